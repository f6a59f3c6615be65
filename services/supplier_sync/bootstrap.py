"""The one place supplier_sync's real adapters are built and handed to the handler.

PostgreSQL through the SQL unit of work (sql_unit_of_work.py), the supplier
through the Rewix client, the shop through the confirmation (confirm.py).
The handler knows them only by what they do: the unit tests hand it an
in-memory unit of work, a fake supplier and a fake shop instead
(tests/unit/fakes.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from shared.clients.rewix import RewixClient
from shared.clients.shop import WooCommerceClient
from shared.messaging.amqp import Publisher
from shared.observability.logging import get_logger
from shared.orders.intake import OrderIntake
from shared.settings import Settings
from services.supplier_sync.confirm import ShopConfirmation
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.sql_unit_of_work import sql_units
from services.supplier_sync.unit_of_work import UnitOfWorkFactory

# Short enough that a SIGTERM is honoured with a confirmation in flight.
SHOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Adapters:
    units: UnitOfWorkFactory
    client: RewixClient
    confirmation: ShopConfirmation

    def close(self) -> None:
        self.client.close()
        self.confirmation.close()


def real_adapters(settings: Settings) -> Adapters:
    return Adapters(
        units=sql_units(settings.database_url),
        client=RewixClient(settings.rewix_api_url, settings.rewix_api_key, settings.secret("rewix_api_password")),
        confirmation=shop_confirmation(settings),
    )


def order_line_handler(settings: Settings, adapters: Adapters) -> OrderLineHandler:
    return OrderLineHandler(adapters.units, adapters.client, adapters.confirmation,
                            auto_confirm=settings.supplier_auto_confirm)


def shop_confirmation(settings: Settings) -> ShopConfirmation:
    """Asks the shop before a webhook's delete or restore counts; without the shop's keys those wait."""
    if not (settings.wc_url and settings.wc_consumer_key and settings.wc_consumer_secret):
        get_logger("supplier_sync").warning("WC_URL or its keys are not set: deletes and restores wait unconfirmed")
        return ShopConfirmation(None, None)
    shop = WooCommerceClient(settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"),
                             timeout=SHOP_TIMEOUT)
    return ShopConfirmation(shop, OrderIntake(settings.database_url, Publisher(settings.amqp_url), shop=shop))
