"""`rewix-sync status`: the whole system on one screen; exit 1 when something needs a person."""
from __future__ import annotations

import click

from services.admin.commands.context import Context, emit_json, pass_context
from services.admin.failures import exit_with, fails_cleanly

MARKS = {"ok": "ok", "warning": "WARN", "attention": "ACT", "off": "off"}


@click.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"ok": bool, "checked_at", "rows": [...]} instead.')
@pass_context
@fails_cleanly
def status(ctx: Context, as_json: bool) -> None:
    """Services reachable, supplier account, webhooks, last catch-up and verification,
    dead letters waiting, short lines and paid orders waiting to be sent.

    Rows marked ACT need a person; the command then exits 1 (0 otherwise), so
    cron or a monitor can run it. WARN is worth knowing, nothing to do yet.
    """
    from services.admin.health_report import gather
    from services.admin.text_tables import render

    report = gather(ctx.settings)
    if as_json:
        emit_json(report.as_dict())
    else:
        click.echo(render(["", "part", "detail"], [[MARKS[r.state], r.name, r.text] for r in report.rows],
                          free_last=True))
        click.echo("needs a person: the rows marked ACT" if report.needs_person else "nothing needs a person")
    if report.needs_person:
        exit_with(1)
