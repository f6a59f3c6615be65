"""`rewix-sync reservations` and `rewix-sync orders`: what the store holds, as tables or JSON;
`rewix-sync orders handled`: a person dealt with a sent order the shop gave up afterwards."""
from __future__ import annotations

from datetime import timezone

import click

from services.admin.commands.context import Context, emit_json, pass_context
from services.admin.failures import Failure, fails_cleanly
from services.admin.order_filters import SYNC_STATES


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
    from shared.db import session_scope
    from services.admin import columns, views

    with session_scope(ctx.settings.database_url) as session:
        rows = views.reservations(session, ctx.settings.wc_url, ctx.settings.wc_order_storage)
    if as_json:
        emit_json(rows)
        return
    click.echo(columns.reservations_text(rows, ctx.settings.wc_url))


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.option("--attention", is_flag=True, help="Only orders that need attention (errors, short, failed, dead letters).")
@click.option("--shop-status", metavar="STATUS", help="Only orders in this WooCommerce status (processing, on-hold...).")
@click.option("--sync-state", type=click.Choice(SYNC_STATES), help="Only orders whose most urgent line is in this state.")
@click.option("--search", metavar="NUMBER", help="Only the order with this number (or id), or numbers starting so.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="The newest N orders only.")
@click.pass_context
@fails_cleanly
def orders(click_ctx: click.Context, as_json: bool, attention: bool, shop_status: str | None, sync_state: str | None,
           search: str | None, limit: int | None) -> None:
    """Shop orders with supplier lines, newest first, and their supplier orders.

    Shows the supplier order id, its status (Booked, Confirmed, Working on,
    Ready, Dispatched, Failed...), tracking, the last sync and the last error.
    The same filters as the operator page; every order when none is given.
    `orders handled NUMBER` records that a sent order the shop gave up
    afterwards was dealt with at the supplier.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    ctx = click_ctx.ensure_object(Context)
    from shared.db import session_scope
    from services.admin import columns, order_filters, views

    wanted = order_filters.OrderFilter.from_values(attention=attention, shop_status=shop_status,
                                                   sync_state=sync_state, search=search)
    settings = ctx.settings
    with session_scope(settings.database_url) as session:
        ids = order_filters.order_ids(session, wanted, limit=limit)
        rows = views.orders(session, settings.wc_url, settings.wc_order_storage, order_ids=ids)
    if as_json:
        emit_json(rows)
        return
    if not rows and wanted.active:
        click.echo("no order matches")
        return
    click.echo(columns.as_text(columns.ORDERS, rows))


@orders.command(short_help="Record that a sent order the shop gave up afterwards was dealt with at the supplier.")
@click.argument("number")
@click.option("--note", metavar="TEXT", help="What was done at the supplier (kept with the record, at most 500 characters).")
@pass_context
@fails_cleanly
def handled(ctx: Context, number: str, note: str | None) -> None:
    """Record that sent order NUMBER, which the shop cancelled, refunded or trashed afterwards,
    was dealt with on the supplier's platform.

    NUMBER is the shop's order number as `rewix-sync orders` shows it. Until
    this is recorded, `status` shows the order as needing a person and
    `reconcile` says what to do; after it, `orders` and the page show it as
    handled, with who, when and the note. Recording it again changes nothing.
    """
    from shared.db import session_scope
    from services.admin import handled_orders

    if note is not None and len(note) > handled_orders.NOTE_MAX:
        raise Failure(f"--note: at most {handled_orders.NOTE_MAX} characters (this one has {len(note)})")
    with session_scope(ctx.settings.database_url) as session:
        try:
            done = handled_orders.mark_handled(session, number, _operator(), note)
        except handled_orders.CannotHandle as exc:
            raise Failure(str(exc)) from None
    when = done.at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    said = f" ({done.note})" if done.note else ""
    if done.already:
        click.echo(f"order #{done.number}: supplier order {done.supplier_order} was recorded handled already, "
                   f"by {done.by} at {when}{said}")
    else:
        click.echo(f"order #{done.number}: supplier order {done.supplier_order} recorded handled by {done.by} "
                   f"at {when}{said}")


def _operator() -> str:
    """Who ran the command: the login name on this machine, and the machine."""
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no login name in the environment nor the password database (a bare container)
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
