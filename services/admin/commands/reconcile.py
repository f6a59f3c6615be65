"""`rewix-sync reconcile [--apply] [--json]`: the shop's open orders, the records and the supplier side by side."""
from __future__ import annotations

import time
from datetime import timezone
from typing import Any

import click

from services.admin.commands.context import Context, emit_json, pass_context, shop_reading_progress
from services.admin.failures import exit_with, fails_cleanly
from services.admin.text_tables import render

NOT_RUNNING = ("supplier_sync is not running (nothing consumes rewix.order_lines): nothing was changed; "
               "start it, then run `rewix-sync reconcile --apply` again")


@click.command()
@click.option("--apply", "apply_", is_flag=True,
              help="Bring the records to the shop, then have supplier_sync set the supplier to what they need.")
@click.option("--json", "as_json", is_flag=True, help='Print {"ok": bool, "differences": [...]} instead of tables.')
@pass_context
@fails_cleanly
def reconcile(ctx: Context, apply_: bool, as_json: bool) -> None:
    """Compare the shop's open orders, the system's records and the supplier's growing order.

    Prints every difference per order and per stock_id, saying which side is
    wrong and how to fix it. With --apply, first brings the records to what
    the shop says (through the webhook path: a paid order the records never
    saw is locked and held, never sent, as backfill holds it), then asks
    supplier_sync, the one writer of the supplier, to set the models that
    still differ, waits for it (60 s at the most) and compares again;
    supplier_sync must be running. Exits 0 only when all three agree (or
    agree after --apply), 1 when differences remain. Without the shop's keys
    (WC_URL, WC_CONSUMER_KEY, WC_CONSUMER_SECRET) only the records and the
    supplier are compared.
    """
    from services.admin.clients import rewix_client

    settings = ctx.settings
    client = rewix_client(settings)
    if settings.wc_url and settings.wc_consumer_key and settings.wc_consumer_secret:
        _three_way(ctx, client, apply_, as_json)
    else:
        _two_way(ctx, client, apply_, as_json)


def _three_way(ctx: Context, client: Any, apply_: bool, as_json: bool) -> None:
    from services.admin import three_way as rec
    from services.admin.clients import shop_client
    from services.admin.supplier_convergence import NotConsuming

    settings = ctx.settings
    shop = shop_client(settings)
    with shop_reading_progress() as progress:
        found = rec.compare(settings.database_url, shop, client, progress)
    applied = None
    if apply_ and (found.stale or found.stock):
        try:
            with shop_reading_progress() as progress:
                applied = rec.apply(settings.database_url, settings.amqp_url, shop, client, found, progress, WaitLine())
        except NotConsuming:
            if as_json:
                emit_json({**_three_way_json(found), "ok": False, "error": NOT_RUNNING})
            else:
                click.echo(three_way_text(found))
                click.echo(NOT_RUNNING)
            exit_with(1)
    result = applied.after if applied is not None else found
    if as_json:
        report = _three_way_json(result)
        if applied is not None:
            report["applied"] = {
                "orders": applied.orders, "held": applied.held, "skipped": applied.skipped,
                "not_recorded": sorted(applied.not_recorded), "supplier": applied.supplier,
                "not_set": sorted(applied.not_converged),
            }
        emit_json(report)
    else:
        if applied is not None:
            click.echo(three_way_text(found))
            click.echo(_applied_text(applied))
        if result.ok:
            click.echo("the shop's open orders, the records and the supplier agree")
        else:
            click.echo(three_way_text(result))
            click.echo(_footer(result, applied))
        if result.held:
            click.echo(held_text(result.held))
    if not result.ok:
        exit_with(1)


def _three_way_json(result: Any) -> dict[str, Any]:
    report: dict[str, Any] = {"ok": result.ok, "differences": [d.as_json() for d in result.differences]}
    if result.held:
        report["held"] = [h.as_json() for h in result.held]
    return report


def _applied_text(applied: Any) -> str:
    lines = [f"brought the records of {len(applied.orders)} order(s) to the shop (supplier_sync converged their "
             f"models); supplier_sync set {len(applied.supplier)} more model(s) at the supplier"
             + (": " + ", ".join(f"{s}={q}" for s, q in sorted(applied.supplier.items())) if applied.supplier else "")]
    lines += [f"held {held}" for held in applied.held]
    if applied.held:
        lines.append(f"{len(applied.held)} paid order(s) the records never saw locked and held, not sent: once sure "
                     "they were not placed at the supplier by hand, `rewix-sync backfill --order ID --send-paid` "
                     "sends one")
    lines += [f"skipped {skipped}" for skipped in applied.skipped]
    if applied.not_recorded:
        lines.append("supplier_sync had not recorded order(s) " + ", ".join(map(str, sorted(applied.not_recorded)))
                     + " within the wait")
    if applied.not_converged:
        lines.append("supplier_sync had not set model(s) " + ", ".join(map(str, sorted(applied.not_converged)))
                     + " within the wait: is it paused (`rewix-sync status`), or were they dead-lettered "
                       "(`rewix-sync dlq list`)?")
    return "\n".join(lines)


def _footer(result: Any, applied: Any) -> str:
    """Suggests --apply only for what it can fix; the rest says what a person must do (each Fix)."""
    count = len(result.differences)
    if applied is None:
        if result.by_apply:
            return f"{count} difference(s); `rewix-sync reconcile --apply` brings the records and the supplier to the shop"
        return f"{count} difference(s): --apply cannot fix these; a person must act as each Fix says"
    if not result.by_apply:
        return f"{count} difference(s) remain: a person must act as each Fix says"
    if applied.not_recorded or applied.not_converged:
        return f"{count} difference(s) remain: supplier_sync had not finished; run `rewix-sync reconcile` again soon"
    return f"{count} difference(s) remain: the supplier could not lock everything asked, or the shop changed meanwhile"


def held_text(held: list[Any]) -> str:
    lines = ["Paid orders held, not sent (they may have been placed at the supplier by hand; the owner decides):"]
    for order in held:
        since = order.since.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(f"  #{order.number} held since {since}: `{order.send}` sends it")
    return "\n".join(lines)


class WaitLine:
    """One line on stderr while supplier_sync works for reconcile --apply: what is left, and for how long."""

    LABELS = {"recording": "orders to record", "setting": "models to set"}

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.last: tuple[str, int] | None = None
        self.stream = click.get_text_stream("stderr")

    def __call__(self, step: str, left: int, of: int) -> None:
        if not of or (step, left) == self.last:
            return
        self.last = (step, left)
        waited = int(time.monotonic() - self.started)
        click.echo(f"waiting for supplier_sync: {of - left} of {of} {self.LABELS.get(step, step)} done ({waited} s)",
                   file=self.stream)



def three_way_text(result: Any) -> str:
    parts = []
    if result.orders:
        parts.append(render(
            ["Order", "Shop", "Records", "Supplier", "Wrong", "Fix"],
            [[d.order_id, _show(d.shop), _show(d.records), _show(d.supplier), d.wrong, d.fix] for d in result.orders],
            numeric=[0], free_last=True,  # what to do, whole
        ))
    if result.stock:
        parts.append(render(
            ["Remote ID", "Shop needs", "Records hold", "Locked at supplier", "Wrong", "Fix"],
            [[d.stock_id, d.shop, d.records, d.supplier, d.wrong, d.fix] for d in result.stock],
            numeric=[0, 1, 2, 3], free_last=True,
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
    from services.admin import supplier_diff as rec

    note = "the shop's keys are not set (WC_CONSUMER_KEY, WC_CONSUMER_SECRET): the shop was not compared"
    settings = ctx.settings
    found = rec.compare(settings.database_url, client)
    converged = None
    if apply_ and found:
        converged = _converge(ctx, [d.stock_id for d in found], as_json, found, note)
        found = rec.compare(settings.database_url, client)
    if as_json:
        report: dict[str, Any] = {"ok": not found, "differences": [
            {"stock_id": d.stock_id, "shop": None, "records": d.needed, "supplier": d.locked,
             "wrong": "supplier", "fix": note, "by_apply": True} for d in found]}
        if converged is not None:
            report["applied"] = {"supplier": converged.set_to, "not_set": sorted(converged.not_set)}
        emit_json(report)
        if found:
            exit_with(1)
        return
    if converged is not None:
        click.echo(f"supplier_sync set {len(converged.set_to)} model(s) at the supplier: "
                   + ", ".join(f"{s}={q}" for s, q in sorted(converged.set_to.items())))
        if converged.not_set:
            click.echo("supplier_sync had not set model(s) " + ", ".join(map(str, sorted(converged.not_set)))
                       + " within the wait: is it paused (`rewix-sync status`), or were they dead-lettered "
                         "(`rewix-sync dlq list`)?")
    if not found:
        click.echo("the supplier " + ("now holds" if converged is not None else "holds")
                   + " exactly what the open orders need")
        click.echo(note)
        return
    click.echo(differences_text(found))
    if converged is None:
        click.echo(f"{len(found)} difference(s); `rewix-sync reconcile --apply` has supplier_sync set the supplier "
                   "to what is needed")
    elif converged.not_set:
        click.echo(f"{len(found)} difference(s) remain: supplier_sync had not finished")
    else:
        click.echo(f"{len(found)} difference(s) remain: the supplier could not lock everything asked")
    click.echo(note)
    exit_with(1)


def _converge(ctx: Context, stock_ids: list[int], as_json: bool, found: list[Any], note: str) -> Any:
    """Has supplier_sync set these models, waiting for it; exits 1 when it is not running."""
    from shared.messaging.amqp import Publisher
    from services.admin import supplier_convergence as convergence

    settings = ctx.settings
    try:
        convergence.require_supplier_sync(settings.amqp_url)
    except convergence.NotConsuming:
        if as_json:
            emit_json({"ok": False, "error": NOT_RUNNING, "differences": [
                {"stock_id": d.stock_id, "shop": None, "records": d.needed, "supplier": d.locked,
                 "wrong": "supplier", "fix": note, "by_apply": True} for d in found]})
        else:
            click.echo(differences_text(found))
            click.echo(NOT_RUNNING)
        exit_with(1)
    if not as_json:
        click.echo(differences_text(found))
    line = WaitLine()
    publisher = Publisher(settings.amqp_url)
    try:
        return convergence.converge(settings.database_url, publisher, stock_ids,
                                    until=time.monotonic() + convergence.WAIT_SECONDS,
                                    progress=lambda left, of: line("setting", left, of))
    finally:
        publisher.close()


def differences_text(found: list[Any]) -> str:
    def what(delta: int) -> str:
        return f"lock {delta} more" if delta > 0 else f"release {-delta}"

    return render(
        ["Remote ID", "Needed", "Locked at supplier", "Difference"],
        [[d.stock_id, d.needed, d.locked, f"{d.delta:+d} ({what(d.delta)})"] for d in found],
        numeric=[0, 1, 2],
    )
