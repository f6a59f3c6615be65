"""`rewix-sync reservations` and `rewix-sync orders`: what the store holds, as tables or JSON."""
from __future__ import annotations

import click

from services.admin.commands.context import Context, emit_json, pass_context
from services.admin.failures import fails_cleanly


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
@fails_cleanly
def reservations(ctx: Context, as_json: bool) -> None:
    """What the open orders need reserved at the supplier, and what it holds.

    One row per supplier model (Remote ID = stock_id): the WooCommerce product
    or variation, the shop orders needing it with a link to each, units needed
    by pending and processing orders, units locked at the supplier, sync status.
    """
    from services.admin import columns, views
    from shared.db import session_scope

    with session_scope(ctx.settings.database_url) as session:
        rows = views.reservations(session, ctx.settings.wc_url)
    if as_json:
        emit_json(rows)
        return
    click.echo(columns.reservations_text(rows, ctx.settings.wc_url))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
@fails_cleanly
def orders(ctx: Context, as_json: bool) -> None:
    """Every shop order with supplier lines, and its supplier order.

    Shows the supplier order id, its status (Booked, Confirmed, Working on,
    Ready, Dispatched, Failed...), tracking, the last sync and the last error.
    """
    from services.admin import columns, views
    from shared.db import session_scope

    with session_scope(ctx.settings.database_url) as session:
        rows = views.orders(session, ctx.settings.wc_url)
    if as_json:
        emit_json(rows)
        return
    click.echo(columns.as_text(columns.ORDERS, rows))
