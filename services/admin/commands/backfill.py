"""`rewix-sync backfill --since ISO8601`: the shop's recent orders through the webhook path again."""
from __future__ import annotations

import click

from services.admin.commands.context import Context, pass_context
from services.admin.failures import Failure, fails_cleanly, first_line


@click.command()
@click.option("--since", required=True, metavar="ISO8601",
              help="UTC moment, e.g. 2026-11-26T09:00:00Z: orders modified at or after it are sent again.")
@pass_context
@fails_cleanly
def backfill(ctx: Context, since: str) -> None:
    """Send the shop's orders modified since a moment through the webhook path again.

    For webhook deliveries that were missed or failed: pulls the orders from
    the WooCommerce REST API and publishes what each needs, like a webhook.
    """
    from services.admin import backfill as bf
    from services.admin.clients import shop_client
    from shared.amqp import BrokerUnavailable, Publisher
    from shared.db import ping
    from shared.order_intake import OrderIntake

    try:
        moment = bf.parse_since(since)
    except ValueError:
        raise Failure(f"--since: {since!r} is not an ISO-8601 time such as 2026-11-26T09:00:00Z") from None
    settings = ctx.settings
    shop = shop_client(settings)
    ping(settings.database_url)
    publisher = Publisher(settings.amqp_url, settings.sync_retry_delays)
    publisher.ping()
    intake = OrderIntake(settings.database_url, publisher)
    total, orders_iter = bf.orders_since(shop, moment)
    summary = bf.Summary()
    try:
        with click.progressbar(length=total, label=f"orders modified since {moment.isoformat()}",
                               file=click.get_text_stream("stderr"), show_pos=True) as bar:
            bf.submit_all(intake, orders_iter, summary, on_order=lambda: bar.update(1))
    except BrokerUnavailable as exc:
        raise Failure(f"RabbitMQ unavailable after {summary.orders} of {total} orders ({first_line(exc)}); "
                      f"run the backfill again with the same --since") from None
    finally:
        publisher.close()
    for problem in summary.invalid:
        click.echo(f"skipped {problem}", err=True)
    click.echo(f"backfill: {summary.orders} orders, {summary.published} messages published, "
               f"{summary.skipped} skipped (no supplier line or not an order)")
