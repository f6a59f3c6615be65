"""`rewix-sync reconcile [--apply]`: the supplier's growing order against what the open orders need."""
from __future__ import annotations

from typing import Any

import click

from services.admin.commands.context import Context, pass_context
from services.admin.failures import exit_with, fails_cleanly
from services.admin.tables import render


@click.command()
@click.option("--apply", "apply_", is_flag=True, help="Set the supplier to what the open orders need.")
@pass_context
@fails_cleanly
def reconcile(ctx: Context, apply_: bool) -> None:
    """Compare the supplier's growing order with what the open orders need.

    Prints every stock_id whose locked quantity at the supplier differs from
    what the pending, on-hold and processing orders not yet sent need. With
    --apply, sets the supplier to exactly that in one call. Exits 0 when both
    agree (or agree after --apply), 1 when differences remain.
    """
    from services.admin import reconcile as rec
    from services.admin.clients import rewix_client

    client = rewix_client(ctx.settings)
    found = rec.compare(ctx.settings.database_url, client)
    if not found:
        click.echo("the supplier holds exactly what the open orders need")
        return
    click.echo(differences_text(found))
    if not apply_:
        click.echo(f"{len(found)} difference(s); `rewix-sync reconcile --apply` sets the supplier to what is needed")
        exit_with(1)
    applied = rec.apply(ctx.settings.database_url, client)
    click.echo(f"set {len(applied.sent)} model(s) at the supplier: "
               + ", ".join(f"{s}={q}" for s, q in sorted(applied.sent.items())))
    if applied.remaining:
        click.echo(differences_text(applied.remaining))
        click.echo(f"{len(applied.remaining)} difference(s) remain: the supplier could not lock everything asked")
        exit_with(1)
    click.echo("the supplier now holds exactly what the open orders need")


def differences_text(found: list[Any]) -> str:
    def what(delta: int) -> str:
        return f"lock {delta} more" if delta > 0 else f"release {-delta}"

    return render(
        ["Remote ID", "Needed", "Locked at supplier", "Difference"],
        [[d.stock_id, d.needed, d.locked, f"{d.delta:+d} ({what(d.delta)})"] for d in found],
        numeric=[0, 1, 2],
    )
