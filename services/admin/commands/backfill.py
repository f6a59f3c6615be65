"""`rewix-sync backfill --since ISO8601 [--send-paid] [--dry-run]`: the shop's orders through the webhook path again."""
from __future__ import annotations

import click

from services.admin.commands.context import Context, pass_context
from services.admin.failures import Failure, fails_cleanly, first_line


@click.command()
@click.option("--since", metavar="ISO8601",
              help="UTC moment, e.g. 2026-11-26T09:00:00Z: orders modified at or after it are sent again.")
@click.option("--order", "order_ids", type=click.IntRange(min=1), multiple=True, metavar="ID",
              help="Only this shop order (by id); may be given several times, instead of --since.")
@click.option("--send-paid", is_flag=True,
              help="Also send paid orders to the supplier (and lift their hold). Without it a paid order "
                   "is locked and held: the owner may have placed it at the supplier by hand.")
@click.option("--dry-run", is_flag=True, help="Print what each order would lock and send; change and send nothing.")
@pass_context
@fails_cleanly
def backfill(ctx: Context, since: str | None, order_ids: tuple[int, ...], send_paid: bool, dry_run: bool) -> None:
    """Send the shop's orders modified since a moment through the webhook path again.

    For webhook deliveries that were missed or failed, and for going live:
    pulls the orders from the WooCommerce REST API and publishes what each
    needs, like a webhook. Pending and on-hold orders are locked; paid
    (processing) orders are locked and held, not sent, unless --send-paid is
    given; a held order stays unsent whatever webhook comes later, until a
    backfill with --send-paid names it.
    """
    from shared.db import ping
    from shared.messaging.amqp import BrokerUnavailable, Publisher
    from shared.orders.intake import OrderIntake, read_refunds
    from services.admin import backfill as bf
    from services.admin.clients import shop_client

    if bool(since) == bool(order_ids):
        raise Failure("give either --since ISO8601 or one or more --order ID")
    moment = None
    if since:
        try:
            moment = bf.parse_since(since)
        except ValueError:
            raise Failure(f"--since: {since!r} is not an ISO-8601 time such as 2026-11-26T09:00:00Z") from None
    settings = ctx.settings
    shop = shop_client(settings)
    ping(settings.database_url)
    if moment is not None:
        total, orders_iter = bf.orders_since(shop, moment)
        label = f"orders modified since {moment.isoformat()}"
    else:
        total, orders_iter = bf.orders_by_id(shop, list(order_ids))
        label = "orders named"
    if dry_run:
        counts: dict[str, int] = {}

        def show(plan: "bf.OrderPlan | str") -> None:
            if isinstance(plan, str):
                click.echo(plan)
                return
            click.echo(plan.describe())
            counts[plan.action] = counts.get(plan.action, 0) + 1

        bf.plan_all(settings.database_url, orders_iter, send_paid=send_paid, on_plan=show,
                    refunds_of=lambda order: read_refunds(shop, order))
        summary = ", ".join(f"{n} {action}" for action, n in sorted(counts.items())) or "no order"
        click.echo(f"dry run: {total} {label}; would {summary}; nothing was locked or sent")
        return
    publisher = Publisher(settings.amqp_url)
    publisher.ping()
    intake = OrderIntake(settings.database_url, publisher, shop=shop)
    summary = bf.Summary()
    try:
        with click.progressbar(length=total, label=label, file=click.get_text_stream("stderr"), show_pos=True) as bar:
            bf.submit_all(intake, orders_iter, summary, on_order=lambda: bar.update(1), send_paid=send_paid)
    except BrokerUnavailable as exc:
        raise Failure(f"RabbitMQ unavailable after {summary.orders} of {total} orders ({first_line(exc)}); "
                      f"run the backfill again with the same options") from None
    finally:
        publisher.close()
    for problem in summary.invalid:
        click.echo(f"skipped {problem}", err=True)
    for held in summary.held:
        click.echo(f"held {held}")
    if summary.held:
        click.echo(f"{len(summary.held)} paid orders locked and held, not sent: once sure they were not placed "
                   "at the supplier by hand, send them with --send-paid")
    for released in summary.released:
        click.echo(f"hold lifted {released}")
    click.echo(f"backfill: {summary.orders} orders, {summary.published} messages published, "
               f"{summary.skipped} skipped (no supplier line or not an order)")
