"""`rewix-sync demo`: the whole system on this machine, against the bundled simulators."""
from __future__ import annotations

import re
from typing import Any

import click

from shared.settings import require
from services.admin.commands.context import Context, pass_context
from services.admin.failures import Failure, exit_with, fails_cleanly


# Where the demo is run from, for a `rewix-sync` installed without the repository.
HOW_TO_RUN = ("the demo runs from a clone of the repository, which holds the simulators and the dev stack: "
              "./scripts/demo there, or `docker compose --profile demo up` (docs/operations.md)")


def dev_stack_demo() -> Any:
    """devstack.demo: the simulators and the dev stack are development tools, in a clone of the
    repository (and the demo image), never in the installed package or the production image."""
    try:
        from devstack import demo as demo_
    except ImportError as exc:
        if exc.name not in ("devstack", "simulators") and not str(exc.name).startswith(("devstack.", "simulators.")):
            raise
        raise Failure(HOW_TO_RUN) from None
    return demo_


@click.command()
@click.option("--orders", "count", type=click.IntRange(1, 60), default=6, show_default=True,
              help="How many customer orders to place.")
@click.option("--keep", is_flag=True, help="Keep the demo database and vhost (and the service logs) afterwards.")
@click.option("--name", default=None, metavar="NAME",
              help="Name of the demo's database and RabbitMQ vhost (made fresh, dropped at the end) "
                   "[default: rewix_demo_ and eight random hex digits, so two demos at once do not collide].")
@click.option("--feed-only", is_flag=True,
              help="Only place orders and move statuses, against the services and simulators already running at "
                   "REWIX_API_URL and WC_URL (docker compose's demo profile).")
@pass_context
@fails_cleanly
def demo(ctx: Context, count: int, keep: bool, name: str | None, feed_only: bool) -> None:
    """Run the whole system here against the bundled supplier and shop simulators.

    Starts both simulators and the three services on a fresh database and
    RabbitMQ vhost of the demo's own, places orders in the shop (pending, paid,
    cancelled, a mixed order, a quantity change), moves the supplier orders
    from Booked to Dispatched and prints the reservations and orders. Every
    process it started is stopped at the end; the database and vhost are
    dropped unless --keep.
    """
    if name is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise Failure(f"--name: {name!r} must be lower-case letters, digits and underscores")
    demo_ = dev_stack_demo()

    settings = ctx.settings
    try:
        if feed_only:
            require(settings, "REWIX_API_URL", "WC_URL", "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET")
            demo_.run_feed_only(settings.database_url, settings.rewix_api_url, settings.wc_url,
                                settings.wc_consumer_key, settings.secret("wc_consumer_secret"),
                                orders=count, echo=click.echo)
        else:
            demo_.run_demo(settings.database_url, settings.amqp_url, orders=count, keep=keep, echo=click.echo,
                           name=name)
    except demo_.DemoFailed as exc:
        raise Failure(f"demo failed: {exc}") from None
    except KeyboardInterrupt:
        click.echo("demo interrupted; every process it started has been stopped", err=True)
        exit_with(130)
