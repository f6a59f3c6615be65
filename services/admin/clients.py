"""The supplier and shop clients the operator's commands use, built from the settings.

Each factory first checks that its settings are there, so a missing one is a
one-line failure naming it rather than a traceback later.
"""
from __future__ import annotations

from shared.clients.rewix import RewixClient
from shared.clients.shop import WooCommerceClient
from shared.settings import Settings, require


def rewix_client(settings: Settings) -> RewixClient:
    require(settings, "REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD")
    return RewixClient(settings.rewix_api_url, settings.rewix_api_key, settings.secret("rewix_api_password"))


def shop_client(settings: Settings) -> WooCommerceClient:
    require(settings, "WC_URL", "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET")
    return WooCommerceClient(settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"))
