"""`rewix-sync`: the operator's command line (interfaces.md, "Operator commands").

Every command fails with one clear line on stderr and a non-zero exit when it
cannot do its work.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy.exc import OperationalError

from shared.logging import configure_logging
from shared.settings import ConfigurationError, Settings, load_settings


def fails_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the failures an operator can meet into one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigurationError as exc:
            raise click.ClickException(str(exc.code)) from None
        except OperationalError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            raise click.ClickException(f"database unavailable: {first}") from None

    return wrapper


class Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
            configure_logging(self._settings.log_level, "console")
        return self._settings


pass_context = click.make_pass_decorator(Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """Operate the WooCommerce <-> Rewix synchronisation."""
    ctx.ensure_object(Context)


@main.group()
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


@main.group()
def products() -> None:
    """The product map (shop product/variation -> supplier stock_id)."""


@products.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_context
@fails_cleanly
def products_import(ctx: Context, file: Path) -> None:
    """Load FILE.csv (header wc_product_id,wc_variation_id,stock_id); all or nothing."""
    from shared.db import session_scope
    from shared.product_map import ImportError_, import_product_map, parse_product_map

    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise click.ClickException(f"{file}: not a UTF-8 text file") from None
    try:
        rows = parse_product_map(text)
    except ImportError_ as exc:
        raise click.ClickException(f"{file}: {exc}; nothing was imported") from None
    with session_scope(ctx.settings.database_url) as session:
        count = import_product_map(session, rows)
    click.echo(f"imported {count} product mappings")


if __name__ == "__main__":
    main()
