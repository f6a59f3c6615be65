"""`rewix-sync db upgrade`."""
from __future__ import annotations

import click

from services.admin.commands.context import Context, pass_context
from services.admin.failures import fails_cleanly


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_context
@fails_cleanly
def db_upgrade(ctx: Context) -> None:
    """Create or migrate the database schema."""
    from shared.db.migrate import upgrade

    upgrade(ctx.settings.database_url)
    click.echo("database schema is up to date")
