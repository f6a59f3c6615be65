"""`rewix-sync web`: serve the operator page."""
from __future__ import annotations

import click

from shared.settings import refuse_weak_secrets
from services.admin.commands.context import Context, pass_context
from services.admin.failures import fails_cleanly


@click.command()
@click.option("--host", default=None, help="Address to listen on [default: ADMIN_HOST, 0.0.0.0] (the port is ADMIN_PORT).")
@pass_context
@fails_cleanly
def web(ctx: Context, host: str) -> None:
    """Serve the operator page on ADMIN_PORT (refuses everyone until ADMIN_TOKEN is set).

    Does not start with an ADMIN_TOKEN shorter than 32 characters or left at
    the placeholder from .env.example.

    Reservations, orders with their supplier status and tracking, and dead
    letters with a replay button. Log in with the token in a browser, or send
    `Authorization: Bearer <token>`.
    """
    from shared.db import ping
    from services.admin.web import AdminServer

    settings = refuse_weak_secrets(ctx.settings, "ADMIN_TOKEN")
    host = host or settings.admin_host
    if not settings.admin_token:
        click.echo("warning: ADMIN_TOKEN is not set: the page refuses everyone until it is", err=True)
    ping(settings.database_url)
    AdminServer(settings, host).run()
