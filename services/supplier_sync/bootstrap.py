"""The one place supplier_sync's real adapters are built and handed to the handlers.

PostgreSQL through the SQL unit of work (sql_unit_of_work.py), the supplier
through two Rewix clients on the shared request budget (the lock work's at
FIRST priority, the send worker's at LEFTOVER: shared/clients/rewix/budget.py),
the shop through the confirmation (confirm.py), RabbitMQ through a publisher
per handler thread (the send requests, and the convergence after a send).
The handler knows them only by what they do: the unit tests hand it an
in-memory unit of work, a fake supplier and a fake shop instead
(tests/unit/fakes.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from shared.clients.rewix import RewixClient
from shared.clients.rewix.budget import FIRST, LEFTOVER, RequestBudget, request_budget
from shared.clients.shop import WooCommerceClient
from shared.messaging.amqp import Publisher
from shared.observability.logging import get_logger
from shared.orders.intake import OrderIntake
from shared.settings import Settings
from services.supplier_sync.confirm import ShopConfirmation
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.send_worker import OrderSendHandler, converge_requests, send_requests
from services.supplier_sync.sql_unit_of_work import sql_units
from services.supplier_sync.unit_of_work import UnitOfWorkFactory

# Short enough that a SIGTERM is honoured with a confirmation in flight.
SHOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class Adapters:
    units: UnitOfWorkFactory
    client: RewixClient  # the lock work's: FIRST on the budget
    send_client: RewixClient  # the send worker's: LEFTOVER
    budget: RequestBudget
    confirmation: ShopConfirmation
    send_publisher: Publisher  # the lock work's thread: send requests
    # One per send worker thread (a Publisher belongs to one thread): convergence requests.
    converge_publishers: list[Publisher] = field(default_factory=list)

    def close(self) -> None:
        self.client.close()
        self.send_client.close()
        self.confirmation.close()
        self.send_publisher.close()
        for publisher in self.converge_publishers:
            publisher.close()


def real_adapters(settings: Settings) -> Adapters:
    budget = request_budget(settings.database_url, settings.supplier_requests_per_second)

    def client(priority: str) -> RewixClient:
        return RewixClient(settings.rewix_api_url, settings.rewix_api_key, settings.secret("rewix_api_password"),
                           budget=budget, priority=priority)

    return Adapters(
        units=sql_units(settings.database_url),
        client=client(FIRST),
        send_client=client(LEFTOVER),
        budget=budget,
        confirmation=shop_confirmation(settings),
        send_publisher=Publisher(settings.amqp_url),
    )


def order_line_handler(settings: Settings, adapters: Adapters) -> OrderLineHandler:
    """The lock work: records, converges the growing order, and hands ready paid orders to the send worker."""
    return OrderLineHandler(adapters.units, adapters.client, adapters.confirmation,
                            auto_confirm=settings.supplier_auto_confirm,
                            ask_to_send=send_requests(adapters.send_publisher))


def order_send_handler(settings: Settings, adapters: Adapters) -> OrderSendHandler:
    """A send worker: the same convergence code, with the LEFTOVER client, one order at a time.

    Each call makes one, for a thread of its own (__main__.py runs SEND_WORKERS of them).
    """
    sender = OrderLineHandler(adapters.units, adapters.send_client, adapters.confirmation,
                              auto_confirm=settings.supplier_auto_confirm)
    publisher = Publisher(settings.amqp_url)
    adapters.converge_publishers.append(publisher)
    return OrderSendHandler(sender, converge_requests(publisher), adapters.budget)


def shop_confirmation(settings: Settings) -> ShopConfirmation:
    """Asks the shop before a webhook's delete or restore counts; without the shop's keys those wait."""
    if not (settings.wc_url and settings.wc_consumer_key and settings.wc_consumer_secret):
        get_logger("supplier_sync").warning("WC_URL or its keys are not set: deletes and restores wait unconfirmed")
        return ShopConfirmation(None, None)
    shop = WooCommerceClient(settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"),
                             timeout=SHOP_TIMEOUT)
    return ShopConfirmation(shop, OrderIntake(settings.database_url, Publisher(settings.amqp_url), shop=shop))
