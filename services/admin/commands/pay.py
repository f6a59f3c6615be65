"""`rewix-sync pay [--json]`: the supplier orders waiting for payment, and whether it is right to pay them now."""
from __future__ import annotations

import click

from services.admin.commands.context import Context, emit_json, pass_context, shop_reading_progress
from services.admin.failures import exit_with, fails_cleanly


@click.command()
@click.option("--json", "as_json", is_flag=True,
              help='Print {"ready_to_pay": bool, "orders": [...], "differences": [...]} instead of tables.')
@pass_context
@fails_cleanly
def pay(ctx: Context, as_json: bool) -> None:
    """List the supplier orders waiting for your payment (Booked) and check them before you pay.

    Each order shows its shop order, customer, items, amount (catalog prices
    before VAT, where the catalog gives them) and how long it has waited.
    Then the supplier plugin's check, made for you: ready to pay when the
    growing order holds exactly what the shop's open orders need and every
    paid order is booked; otherwise every difference and what to do about it.
    Prints where to pay (SUPPLIER_PAYMENT_URL). Exits 0 when ready to pay or
    nothing waits, 1 when something must be fixed first. Without the shop's
    keys only the records and the supplier are compared.
    """
    from services.admin import payments
    from services.admin.clients import rewix_client, shop_client
    from services.admin.payment_tables import report_text

    settings = ctx.settings
    supplier = rewix_client(settings)
    shop = shop_client(settings) if payments.shop_keys_set(settings) else None
    try:
        with shop_reading_progress() as progress:
            report = payments.build(settings, supplier, shop, progress)
    finally:
        supplier.close()
    if as_json:
        emit_json(report.as_json())
    else:
        click.echo(report_text(report))
    if report.exit_code:
        exit_with(report.exit_code)

