"""`rewix-sync reconcile [--apply] [--json]`: the shop's open orders, the records and the supplier side by side."""
from __future__ import annotations

from typing import Any

import click

from services.admin.commands.context import Context, emit_json, pass_context
from services.admin.failures import exit_with, fails_cleanly
from services.admin.tables import render


@click.command()
@click.option("--apply", "apply_", is_flag=True,
              help="Bring the records to the shop, then set the supplier to what the shop's orders need.")
@click.option("--json", "as_json", is_flag=True, help='Print {"ok": bool, "differences": [...]} instead of tables.')
@pass_context
@fails_cleanly
def reconcile(ctx: Context, apply_: bool, as_json: bool) -> None:
    """Compare the shop's open orders, the system's records and the supplier's growing order.

    Prints every difference per order and per stock_id, saying which side is
    wrong. With --apply, first brings the records to what the shop says, then
    sets the supplier to what the shop's orders need, and compares again.
    Exits 0 only when all three agree (or agree after --apply), 1 when
    differences remain. Without the shop's keys (WC_URL, WC_CONSUMER_KEY,
    WC_CONSUMER_SECRET) only the records and the supplier are compared.
    """
    from services.admin.clients import rewix_client

    settings = ctx.settings
    client = rewix_client(settings)
    if settings.wc_url and settings.wc_consumer_key and settings.wc_consumer_secret:
        _three_way(ctx, client, apply_, as_json)
    else:
        _two_way(ctx, client, apply_, as_json)


def _three_way(ctx: Context, client: Any, apply_: bool, as_json: bool) -> None:
    from services.admin import shop_reconcile as rec
    from services.admin.clients import shop_client

    settings = ctx.settings
    shop = shop_client(settings)
    found = _with_progress(lambda progress: rec.compare(settings.database_url, shop, client, progress))
    if apply_ and not found.ok:
        applied = _with_progress(lambda progress: rec.apply(settings.database_url, shop, client, found, progress))
        result = applied.after
        if not as_json:
            click.echo(three_way_text(found))
            click.echo(f"brought the records of {len(applied.orders)} order(s) to the shop; set "
                       f"{len(applied.supplier)} model(s) at the supplier"
                       + (": " + ", ".join(f"{s}={q}" for s, q in sorted(applied.supplier.items()))
                          if applied.supplier else ""))
    else:
        result = found
    if as_json:
        emit_json({"ok": result.ok, "differences": [d.as_json() for d in result.differences]})
    elif result.ok:
        click.echo("the shop's open orders, the records and the supplier agree")
    else:
        click.echo(three_way_text(result))
        hint = "" if apply_ else "; `rewix-sync reconcile --apply` brings the records and the supplier to the shop"
        click.echo(f"{len(result.differences)} difference(s){' remain' if apply_ else ''}{hint}")
    if not result.ok:
        exit_with(1)


def _with_progress(work: Any) -> Any:
    """Runs `work(progress)` with a progress bar on stderr while the shop is read."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=max(total, 1), label="reading the shop's open orders",
                                    file=click.get_text_stream("stderr"), show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        return work(progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)


def three_way_text(result: Any) -> str:
    parts = []
    if result.orders:
        parts.append(render(
            ["Order", "Shop", "Records", "Supplier", "Wrong", "Fix"],
            [[d.order_id, _show(d.shop), _show(d.records), _show(d.supplier), d.wrong, d.fix] for d in result.orders],
            numeric=[0],
        ))
    if result.stock:
        parts.append(render(
            ["Remote ID", "Shop needs", "Records hold", "Locked at supplier", "Wrong", "Fix"],
            [[d.stock_id, d.shop, d.records, d.supplier, d.wrong, d.fix] for d in result.stock],
            numeric=[0, 1, 2, 3],
        ))
    return "\n\n".join(parts)


def _show(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict):
        status = value.get("status")
        units = value.get("needs", value.get("holds")) or {}
        held = ", ".join(f"{s}×{q}" for s, q in sorted(units.items())) or "nothing"
        return f"{status or 'unknown'}: {held}"
    return str(value)


def _two_way(ctx: Context, client: Any, apply_: bool, as_json: bool) -> None:
    """The records against the supplier only (the shop's keys are not set)."""
    from services.admin import reconcile as rec

    note = "the shop's keys are not set (WC_CONSUMER_KEY, WC_CONSUMER_SECRET): the shop was not compared"
    found = rec.compare(ctx.settings.database_url, client)
    if as_json:
        if apply_ and found:
            found = rec.apply(ctx.settings.database_url, client).remaining
        emit_json({"ok": not found, "differences": [
            {"stock_id": d.stock_id, "shop": None, "records": d.needed, "supplier": d.locked,
             "wrong": "supplier", "fix": note} for d in found]})
        if found:
            exit_with(1)
        return
    if not found:
        click.echo("the supplier holds exactly what the open orders need")
        click.echo(note)
        return
    click.echo(differences_text(found))
    if not apply_:
        click.echo(f"{len(found)} difference(s); `rewix-sync reconcile --apply` sets the supplier to what is needed")
        click.echo(note)
        exit_with(1)
    applied = rec.apply(ctx.settings.database_url, client)
    click.echo(f"set {len(applied.sent)} model(s) at the supplier: "
               + ", ".join(f"{s}={q}" for s, q in sorted(applied.sent.items())))
    if applied.remaining:
        click.echo(differences_text(applied.remaining))
        click.echo(f"{len(applied.remaining)} difference(s) remain: the supplier could not lock everything asked")
        click.echo(note)
        exit_with(1)
    click.echo("the supplier now holds exactly what the open orders need")
    click.echo(note)


def differences_text(found: list[Any]) -> str:
    def what(delta: int) -> str:
        return f"lock {delta} more" if delta > 0 else f"release {-delta}"

    return render(
        ["Remote ID", "Needed", "Locked at supplier", "Difference"],
        [[d.stock_id, d.needed, d.locked, f"{d.delta:+d} ({what(d.delta)})"] for d in found],
        numeric=[0, 1, 2],
    )
