"""`rewix-sync`: the operator's command line (interfaces.md, "Operator commands").

Every command fails with one clear line on stderr and a non-zero exit (2) when
it cannot do its work; `reconcile` exits 1 when differences remain.
"""
from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from pika.exceptions import AMQPError
from sqlalchemy.exc import OperationalError, ProgrammingError

from shared.amqp import BrokerUnavailable
from shared.errors import ExternalError
from shared.logging import configure_logging
from shared.settings import ConfigurationError, Settings, load_settings, require


class Failure(click.ClickException):
    """The command could not do its work: one line on stderr, exit 2."""

    exit_code = 2


def fails_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the failures an operator can meet into one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigurationError as exc:
            raise Failure(str(exc.code)) from None
        except OperationalError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            raise Failure(f"database unavailable: {first}") from None
        except ProgrammingError as exc:
            first = str(exc.orig or exc).strip().splitlines()[0]
            if "does not exist" in first:
                raise Failure(f"database schema missing ({first}): run `rewix-sync db upgrade`") from None
            raise
        except BrokerUnavailable as exc:
            raise Failure(f"RabbitMQ unavailable: {_one_line(exc)}") from None
        except AMQPError as exc:
            raise Failure(f"RabbitMQ unavailable: {exc!r}") from None
        except ExternalError as exc:
            raise Failure(_external_failure(exc)) from None

    return wrapper


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _external_failure(exc: ExternalError) -> str:
    if exc.status in (401, 403):
        return f"credentials refused (HTTP {exc.status}): {_one_line(exc)}"
    return _one_line(exc)


def emit_json(value: Any) -> None:
    from services.admin.views import jsonable

    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))


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
        raise Failure(f"{file}: not a UTF-8 text file") from None
    try:
        rows = parse_product_map(text)
    except ImportError_ as exc:
        raise Failure(f"{file}: {exc}; nothing was imported") from None
    with session_scope(ctx.settings.database_url) as session:
        count = import_product_map(session, rows)
    click.echo(f"imported {count} product mappings")


# --- what the shop's orders hold at the supplier -----------------------------------------


@main.command()
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
    from services.admin import views

    with session_scope(ctx.settings.database_url) as session:
        rows = views.reservations(session, ctx.settings.wc_url)
    if as_json:
        emit_json(rows)
        return
    click.echo(render_reservations(rows, ctx.settings.wc_url))


def render_reservations(rows: list[dict[str, Any]], wc_url: str | None) -> str:
    from services.admin.tables import render

    if not rows:
        return "nothing is reserved: no open order needs a supplier product"
    table = render(
        ["Remote ID", "WooCommerce ID", "Orders", "Needed", "Locked", "Sync status"],
        [
            [
                row["stock_id"],
                row["woocommerce_id"],
                ", ".join(f"#{o['number'] or o['order_id']} {o['status']} x{o['quantity']}" for o in row["orders"]),
                row["needed"],
                row["locked"],
                row["sync_status"],
            ]
            for row in rows
        ],
        numeric=[0, 3, 4],
    )
    links: dict[int, tuple[str, str | None]] = {}
    for row in rows:
        for order in row["orders"]:
            links[order["order_id"]] = (order["number"] or str(order["order_id"]), order["url"])
    lines = [table]
    if links:
        lines.append("")
        if wc_url:
            lines.append("Order details:")
            lines += [f"  #{number}  {url}" for _, (number, url) in sorted(links.items())]
        else:
            lines.append("(set WC_URL to link each order to its page in WooCommerce)")
    return "\n".join(lines)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@pass_context
@fails_cleanly
def orders(ctx: Context, as_json: bool) -> None:
    """Every shop order with supplier lines, and its supplier order.

    Shows the supplier order id, its status (Booked, Confirmed, Working on,
    Ready, Dispatched, Failed...), tracking, the last sync and the last error.
    """
    from shared.db import session_scope
    from services.admin import views

    with session_scope(ctx.settings.database_url) as session:
        rows = views.orders(session, ctx.settings.wc_url)
    if as_json:
        emit_json(rows)
        return
    click.echo(render_orders(rows))


def supplier_status_text(row: dict[str, Any]) -> str:
    if row["supplier_status_name"] is None:
        return "not sent"
    text = row["supplier_status_name"]
    if row["cancelled_in_shop"]:
        text += " (cancelled in shop!)"
    return text


def tracking_text(row: dict[str, Any]) -> str | None:
    parts = [p for p in (row["tracking_code"], row["carrier_name"]) if p]
    return " ".join([parts[0], f"({parts[1]})"] if len(parts) == 2 else parts) or None


def render_orders(rows: list[dict[str, Any]]) -> str:
    from services.admin.tables import render

    if not rows:
        return "no shop order with supplier lines yet"
    return render(
        ["Order", "Shop status", "Supplier lines", "Sync", "Supplier order", "Supplier status", "Tracking",
         "Last sync", "Last error"],
        [
            [
                f"#{row['number'] or row['order_id']}" + ("" if str(row["order_id"]) == row["number"] else f" ({row['order_id']})"),
                row["status"] + (" (deleted)" if row["deleted"] else ""),
                ", ".join(f"{line['stock_id']} x{line['quantity']}" for line in row["lines"]) or "none left",
                row["sync_status"],
                row["supplier_order_id"],
                supplier_status_text(row),
                tracking_text(row),
                row["last_synced_at"],
                row["last_error"],
            ]
            for row in rows
        ],
        numeric=[4],
        max_cell=48,
    )


# --- dead letters -------------------------------------------------------------------------


@main.group()
def dlq() -> None:
    """Dead-lettered messages: list, show, replay, purge.

    Every subcommand first moves the messages waiting in the dead-letter
    queues (rewix.order_lines.dead, rewix.status_changes.dead) into the
    database, where they are kept until replayed or purged.
    """


def _drain(ctx: Context) -> None:
    from services.admin.dead_letters import drain

    drain(ctx.settings.amqp_url, ctx.settings.database_url)


def _ids_or_all(ids: tuple[int, ...], all_: bool, verb: str) -> list[int] | None:
    if all_ and ids:
        raise Failure("give IDs or --all, not both")
    if not all_ and not ids:
        raise Failure(f"name the dead letters to {verb} (IDs from `rewix-sync dlq list`) or give --all")
    return None if all_ else list(ids)


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of objects instead of a table.")
@pass_context
@fails_cleanly
def dlq_list(ctx: Context, as_json: bool) -> None:
    """Dead letters with their reason, attempts and first/last failure time."""
    from shared.db import session_scope
    from services.admin import dead_letters
    from services.admin.tables import iso_time, render

    _drain(ctx)
    with session_scope(ctx.settings.database_url) as session:
        rows = [dead_letters.as_dict(r) for r in dead_letters.all_records(session)]
    if as_json:
        emit_json(rows)
        return
    if not rows:
        click.echo("no dead letters")
        return
    click.echo(
        render(
            ["ID", "Queue", "Order", "Attempts", "First failed", "Last failed", "Replayed", "Reason"],
            [
                [r["id"], r["queue"], r["order_id"], r["attempts"], iso_time(r["first_failed_at"]),
                 iso_time(r["last_failed_at"]), iso_time(r["replayed_at"]), r["reason"]]
                for r in rows
            ],
            numeric=[0, 2, 3],
            free_last=True,
        )
    )


@dlq.command("show")
@click.argument("id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (with headers and body).")
@pass_context
@fails_cleanly
def dlq_show(ctx: Context, id: int, as_json: bool) -> None:  # noqa: A002 - the command's word
    """One dead letter in full: reason, headers and body."""
    from shared.db import session_scope
    from services.admin import dead_letters

    _drain(ctx)
    with session_scope(ctx.settings.database_url) as session:
        try:
            (record,) = dead_letters.find(session, [id])
        except dead_letters.UnknownDeadLetter as exc:
            raise Failure(str(exc)) from None
        data = dead_letters.as_dict(record)
        headers = record.headers
        body = dead_letters.body_bytes(record)
    try:
        parsed_body: Any = json.loads(body)
    except ValueError:
        parsed_body = None
    if as_json:
        emit_json({**data, "headers": headers, "body": body.decode("utf-8", errors="replace")})
        return
    for key, value in data.items():
        click.echo(f"{key + ':':<17}{'-' if value is None else value}")
    click.echo("headers:")
    click.echo(json.dumps(headers, indent=2, ensure_ascii=False, sort_keys=True))
    click.echo("body:")
    if parsed_body is not None:
        click.echo(json.dumps(parsed_body, indent=2, ensure_ascii=False))
    else:
        click.echo(body.decode("utf-8", errors="replace"))


@dlq.command("replay")
@click.argument("ids", type=int, nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Replay every dead letter not replayed yet.")
@pass_context
@fails_cleanly
def dlq_replay(ctx: Context, ids: tuple[int, ...], all_: bool) -> None:
    """Put dead letters back on their work queue, unchanged but for a fresh attempt count.

    Safe to repeat: the consumers are idempotent, so replaying a message that
    has since succeeded changes nothing at the supplier.
    """
    from services.admin import dead_letters

    wanted = _ids_or_all(ids, all_, "replay")
    _drain(ctx)
    try:
        done = dead_letters.replay(
            ctx.settings.database_url, ctx.settings.amqp_url, ctx.settings.sync_retry_delays, wanted
        )
    except dead_letters.UnknownDeadLetter as exc:
        raise Failure(str(exc)) from None
    except KeyError as exc:
        raise Failure(f"cannot replay: {exc.args[0]}") from None
    for item in done:
        click.echo(f"replayed {item.id} to {item.queue} (order {item.order_id if item.order_id is not None else '-'}, "
                   f"message {item.message_id})")
    click.echo(f"{len(done)} dead letter(s) replayed")


@dlq.command("purge")
@click.argument("ids", type=int, nargs=-1)
@click.option("--all", "all_", is_flag=True, help="Drop every dead letter.")
@pass_context
@fails_cleanly
def dlq_purge(ctx: Context, ids: tuple[int, ...], all_: bool) -> None:
    """Drop dead letters for good, after printing what is dropped."""
    from shared.db import session_scope
    from services.admin import dead_letters

    wanted = _ids_or_all(ids, all_, "purge")
    _drain(ctx)
    with session_scope(ctx.settings.database_url) as session:
        try:
            rows = dead_letters.find(session, wanted)
        except dead_letters.UnknownDeadLetter as exc:
            raise Failure(str(exc)) from None
        for row in rows:
            click.echo(f"dropping {row.id}: {row.queue} order {row.order_id if row.order_id is not None else '-'} "
                       f"message {row.message_id}: {row.reason}")
            click.echo(f"  body: {row.body}")
        dead_letters.delete_records(session, rows)
    click.echo(f"{len(rows)} dead letter(s) purged")


# --- the supplier and the shop ------------------------------------------------------------


def rewix_client(settings: Settings) -> Any:
    from shared.rewix import RewixClient

    require(settings, "REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD")
    return RewixClient(settings.rewix_api_url, settings.rewix_api_key, settings.secret("rewix_api_password"))


def shop_client(settings: Settings) -> Any:
    from shared.shop import WooCommerceClient

    require(settings, "WC_URL", "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET")
    return WooCommerceClient(settings.wc_url, settings.wc_consumer_key, settings.secret("wc_consumer_secret"))


@main.command()
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

    client = rewix_client(ctx.settings)
    found = rec.compare(ctx.settings.database_url, client)
    if not found:
        click.echo("the supplier holds exactly what the open orders need")
        return
    click.echo(render_differences(found))
    if not apply_:
        click.echo(f"{len(found)} difference(s); `rewix-sync reconcile --apply` sets the supplier to what is needed")
        ctx_exit(1)
    applied = rec.apply(ctx.settings.database_url, client)
    click.echo(f"set {len(applied.sent)} model(s) at the supplier: "
               + ", ".join(f"{s}={q}" for s, q in sorted(applied.sent.items())))
    if applied.remaining:
        click.echo(render_differences(applied.remaining))
        click.echo(f"{len(applied.remaining)} difference(s) remain: the supplier could not lock everything asked")
        ctx_exit(1)
    click.echo("the supplier now holds exactly what the open orders need")


def ctx_exit(code: int) -> None:
    raise click.exceptions.Exit(code)


def render_differences(found: list[Any]) -> str:
    from services.admin.tables import render

    def what(delta: int) -> str:
        return f"lock {delta} more" if delta > 0 else f"release {-delta}"

    return render(
        ["Remote ID", "Needed", "Locked at supplier", "Difference"],
        [[d.stock_id, d.needed, d.locked, f"{d.delta:+d} ({what(d.delta)})"] for d in found],
        numeric=[0, 1, 2],
    )


@main.command()
@click.option("--since", required=True, metavar="ISO8601",
              help="UTC moment, e.g. 2026-11-26T09:00:00Z: orders modified at or after it are sent again.")
@pass_context
@fails_cleanly
def backfill(ctx: Context, since: str) -> None:
    """Send the shop's orders modified since a moment through the webhook path again.

    For webhook deliveries that were missed or failed: pulls the orders from
    the WooCommerce REST API and publishes what each needs, like a webhook.
    """
    from services.admin import backfill as bf
    from shared.amqp import Publisher
    from shared.order_intake import OrderIntake

    try:
        moment = bf.parse_since(since)
    except ValueError:
        raise Failure(f"--since: {since!r} is not an ISO-8601 time such as 2026-11-26T09:00:00Z") from None
    settings = ctx.settings
    shop = shop_client(settings)
    from shared.db import ping

    ping(settings.database_url)
    publisher = Publisher(settings.amqp_url, settings.sync_retry_delays)
    publisher.ping()
    intake = OrderIntake(settings.database_url, publisher)
    total, orders_iter = bf.orders_since(shop, moment)
    summary = bf.Summary()
    try:
        with click.progressbar(length=total, label=f"orders modified since {moment.isoformat()}",
                               file=click.get_text_stream("stderr"), show_pos=True) as bar:
            bf.submit_all(intake, orders_iter, summary, on_order=lambda: bar.update(1))
    except BrokerUnavailable as exc:
        raise Failure(f"RabbitMQ unavailable after {summary.orders} of {total} orders ({_one_line(exc)}); "
                      f"run the backfill again with the same --since") from None
    finally:
        publisher.close()
    for problem in summary.invalid:
        click.echo(f"skipped {problem}", err=True)
    click.echo(f"backfill: {summary.orders} orders, {summary.published} messages published, "
               f"{summary.skipped} skipped (no supplier line or not an order)")


@main.group()
def catalog() -> None:
    """The supplier catalog stored locally (to match order lines by SKU)."""


@catalog.command("sync")
@pass_context
@fails_cleanly
def catalog_sync(ctx: Context) -> None:
    """Download the supplier catalog and store every model's stock_id, code, barcode and availability.

    Only the changes since the last download are fetched; the whole catalog
    when there was none, or when the supplier says it was too long ago.
    """
    import math

    from services.admin import catalog as cat
    from shared.errors import TransientError

    client = rewix_client(ctx.settings)
    try:
        result = cat.sync(ctx.settings.database_url, client)
    except TransientError as exc:
        if exc.status == 429:
            wait = f"{math.ceil(exc.retry_after)} s" if exc.retry_after is not None else "a while"
            click.echo(f"Error: rate limited by the supplier, retry in {wait}", err=True)
            ctx_exit(1)
        raise
    how = "full catalog" if result.full else f"changes since {result.since}"
    click.echo(f"catalog: {result.models} models stored ({how}); next sync asks for changes since {result.last_update}")


# --- the operator page ----------------------------------------------------------------------


@main.command()
@click.option("--host", default=None, help="Address to listen on [default: ADMIN_HOST, 0.0.0.0] (the port is ADMIN_PORT).")
@pass_context
@fails_cleanly
def web(ctx: Context, host: str) -> None:
    """Serve the operator page on ADMIN_PORT (refuses everyone until ADMIN_TOKEN is set).

    Reservations, orders with their supplier status and tracking, and dead
    letters with a replay button. Log in with the token in a browser, or send
    `Authorization: Bearer <token>`.
    """
    from services.admin.web import AdminServer
    from shared.db import ping

    settings = ctx.settings
    host = host or settings.admin_host
    if not settings.admin_token:
        click.echo("warning: ADMIN_TOKEN is not set: the page refuses everyone until it is", err=True)
    ping(settings.database_url)
    AdminServer(settings, host).run()


# --- the demo -----------------------------------------------------------------------------


@main.command()
@click.option("--orders", "count", type=click.IntRange(1, 60), default=6, show_default=True,
              help="How many customer orders to place.")
@click.option("--keep", is_flag=True, help="Keep the demo database and vhost (and the service logs) afterwards.")
@click.option("--name", default="rewix_demo", show_default=True, metavar="NAME",
              help="Name of the demo's database and RabbitMQ vhost (made fresh, dropped at the end).")
@click.option("--feed-only", is_flag=True,
              help="Only place orders and move statuses, against the services and simulators already running at "
                   "REWIX_API_URL and WC_URL (docker compose's demo profile).")
@pass_context
@fails_cleanly
def demo(ctx: Context, count: int, keep: bool, name: str, feed_only: bool) -> None:
    """Run the whole system here against the bundled supplier and shop simulators.

    Starts both simulators and the three services on a fresh database and
    RabbitMQ vhost (rewix_demo), places orders in the shop (pending, paid,
    cancelled, a mixed order, a quantity change), moves the supplier orders
    from Booked to Dispatched and prints the reservations and orders. Every
    process it started is stopped at the end; the database and vhost are
    dropped unless --keep.
    """
    import re

    from services.admin import demo as demo_

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise Failure(f"--name: {name!r} must be lower-case letters, digits and underscores")
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
        ctx_exit(130)


if __name__ == "__main__":
    main()
