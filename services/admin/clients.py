"""The supplier and shop clients the operator's commands use, built from the settings.

Each factory first checks that its settings are there, so a missing one is a
one-line failure naming it rather than a traceback later.
"""
from __future__ import annotations

from shared.clients.rewix import RewixClient
from shared.clients.rewix.from_settings import supplier_client
from shared.clients.shop import WooCommerceClient
from shared.settings import Settings, require


def rewix_client(settings: Settings) -> RewixClient:
    require(settings, "REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD")
    # The operator waits at the screen: FIRST, like the locks, on the account's shared budget.
    return supplier_client(settings)


def shop_client(settings: Settings) -> WooCommerceClient:
    require(settings, "WC_URL", "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET")
    return WooCommerceClient(settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"))
