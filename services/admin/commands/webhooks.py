"""`rewix-sync webhooks install|status`: the shop's four order webhooks that deliver to ingest.

How to connect a shop from nothing: docs/connect-a-shop.md.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import click

from shared.clients.shop.webhooks import ORDER_TOPICS, missing_topics, ours, plan_install
from shared.failures.errors import ExternalError
from shared.settings import Settings, require
from shared.shop_state.site_records import WHAT_TO_DO, Refused
from shared.shop_state.sites import AcceptedSites
from services.admin.clients import shop_client
from services.admin.commands.context import Context, emit_json, pass_context
from services.admin.failures import Failure, exit_with, fails_cleanly, first_line

KEY_NEEDS = ("the shop refused the REST API key (HTTP {status}): it needs read_write permission and a user who "
             "is a shop manager or administrator (WooCommerce > Settings > Advanced > REST API)")


@click.group()
def webhooks() -> None:
    """The shop's order webhooks that deliver to ingest."""


def _delivery_url(settings: Settings, given: str | None) -> str:
    url = given or settings.wc_webhook_delivery_url
    if not url:
        raise Failure("no delivery URL: give --delivery-url or set WC_WEBHOOK_DELIVERY_URL "
                      "(the public URL of ingest's /webhooks/woocommerce)")
    if not url.startswith(("http://", "https://")):
        raise Failure(f"delivery URL must start with http:// or https://, not {url!r}")
    return url


def _shop_call(what: Any) -> Any:
    """A shop call whose 401/403 becomes the one line saying what the key needs."""
    try:
        return what()
    except ExternalError as exc:
        if exc.refuses_credentials:
            raise Failure(KEY_NEEDS.format(status=exc.status)) from None
        raise


@webhooks.command("install")
@click.option("--delivery-url", metavar="URL", default=None,
              help="Where WooCommerce delivers [default: WC_WEBHOOK_DELIVERY_URL].")
@pass_context
@fails_cleanly
def install(ctx: Context, delivery_url: str | None) -> None:
    """Create the four order webhooks (order.created, .updated, .deleted, .restored), or repair them.

    A webhook of the topic that delivers to the URL (or carries the name this
    command gives) is kept and set right: active, this URL, WC_WEBHOOK_SECRET.
    Running it again creates nothing new. WooCommerce pings the URL of each
    webhook it creates and wants exactly 200 (ingest answers it).
    """
    settings = require(ctx.settings, "WC_WEBHOOK_SECRET")
    url = _delivery_url(settings, delivery_url)
    shop = shop_client(settings)
    steps = plan_install(_shop_call(shop.list_webhooks), url, settings.secret("wc_webhook_secret"))
    for step in steps:
        if step.creates:
            created = _shop_call(lambda: shop.create_webhook(**step.changes))
            click.echo(f"{step.topic}: created webhook {created['id']} ({created.get('status')}), delivering to {url}")
        else:
            updated = _shop_call(lambda: shop.update_webhook(step.webhook_id, step.changes))
            what = f"repaired ({', '.join(step.repairs)})" if step.repairs else "already right"
            click.echo(f"{step.topic}: webhook {step.webhook_id} {what}; now {updated.get('status')}, "
                       f"delivering to {url}; secret set again (WooCommerce never shows it)")
        for duplicate in step.duplicates:
            click.echo(f"{step.topic}: webhook {duplicate} also delivers to {url}: a duplicate, left alone "
                       "(delete it in WooCommerce > Settings > Advanced > Webhooks)")
    created = sum(step.creates for step in steps)
    click.echo(f"{created} created, {len(steps) - created} kept; check them with `rewix-sync webhooks status`")
    accepted, _refused, problems = _sources(settings, shop)
    click.echo(f"deliveries accepted from {accepted.describe()}")
    for problem in problems:
        click.echo(problem, err=True)


@webhooks.command("status")
@click.option("--delivery-url", metavar="URL", default=None,
              help="The URL the system's webhooks deliver to [default: WC_WEBHOOK_DELIVERY_URL].")
@click.option("--json", "as_json", is_flag=True,
              help="Print a JSON array: id, topic, status, delivery_url, name, reactivated_count, "
                   "last_reactivated_at (a missing topic has id null and status \"missing\").")
@pass_context
@fails_cleanly
def status(ctx: Context, delivery_url: str | None, as_json: bool) -> None:
    """The shop's webhooks that deliver to this system: topic, status, last re-activation, what is missing;
    the sites deliveries are accepted from, and those refused lately.

    Reads the shop's home from its REST index again (GET /wp-json/). Exits 1
    when a topic is missing, one of them is disabled or paused, or signed
    deliveries from another site than the shop's were refused in the last day
    (a staging copy of the shop); 0 otherwise.
    """
    settings = ctx.settings
    url = _delivery_url(settings, delivery_url)
    shop = shop_client(settings)
    mine = ours(_shop_call(shop.list_webhooks), url)
    records, unknown = _records(settings)
    rows = [_row(w, records.get(w["id"])) for w in mine]
    rows += [{"id": None, "topic": topic, "status": "missing", "delivery_url": url, "name": None,
              "reactivated_count": None, "last_reactivated_at": None} for topic in missing_topics(mine)]
    rows.sort(key=lambda r: (ORDER_TOPICS.index(r["topic"]) if r["topic"] in ORDER_TOPICS else 99, r["id"] or 0))
    if as_json:
        emit_json(rows)
    else:
        from services.admin.text_tables import render

        click.echo(f"webhooks delivering to {url}")
        click.echo(render(["id", "topic", "status", "last re-activated"],
                          [[r["id"] or "-", r["topic"], r["status"], _reactivated(r, unknown)] for r in rows]))
        if unknown:
            click.echo(f"re-activations unknown: {unknown}", err=True)
    accepted, refused, problems = _sources(settings, shop)
    if not as_json:
        click.echo(f"deliveries accepted from {accepted.describe()}")
    for problem in problems:
        click.echo(problem, err=True)
    bad = [r for r in rows if r["status"] != "active"]
    if bad and not as_json:
        click.echo("needs a person: " + ", ".join(f"{r['topic']} {r['status']}" for r in bad)
                   + "; `rewix-sync webhooks install` repairs them")
    if refused:
        from services.admin.health_report import describe_refused

        # On stderr with --json: the array stays the webhooks' own.
        now = datetime.now(timezone.utc)
        click.echo("needs a person: signed deliveries refused, not from the shop's site: "
                   + "; ".join(describe_refused(r, now) for r in refused) + f". {WHAT_TO_DO}", err=as_json)
    if bad or refused:
        exit_with(1)


def _sources(settings: Settings, shop: Any) -> tuple[AcceptedSites, list[Refused], list[str]]:
    """Where deliveries are accepted from, after reading the shop's home again from its REST index, and
    the sources refused lately; neither the index nor the database failing stops the command."""
    from shared.db import get_engine
    from shared.shop_state.site_records import accepted_by_settings, learn_site, read_learned_site, recent_refusals

    problems = []
    engine = get_engine(settings.database_url)
    try:
        learn_site(engine, shop)
    except Exception as exc:  # the index refused or unreadable, the database down: say so, go on
        problems.append(f"the shop's home could not be read again (GET /wp-json/): {first_line(exc)[:200]}")
    try:
        with engine.connect() as connection:
            learned = read_learned_site(connection)
            accepted = accepted_by_settings(settings, learned)
            return accepted, recent_refusals(connection, accepted, datetime.now(timezone.utc)), problems
    except Exception as exc:  # database down or not migrated: the configured sites still stand
        problems.append(f"refused deliveries unknown: database unavailable ({first_line(exc)[:200]})")
        return accepted_by_settings(settings, None), [], problems


def _records(settings: Settings) -> tuple[dict[int, Any], str | None]:
    """What the webhook check recorded; the shop's answer stands on its own when the database does not."""
    from shared.db import get_engine
    from shared.shop_state.webhooks import read_records

    try:
        with get_engine(settings.database_url).connect() as conn:
            return read_records(conn), None
    except Exception as exc:  # database down or not migrated: the shop's side is still worth showing
        return {}, f"database unavailable ({first_line(exc)[:200]})"


def _row(webhook: dict[str, Any], record: Any) -> dict[str, Any]:
    return {
        "id": webhook["id"], "topic": webhook.get("topic"), "status": webhook.get("status"),
        "delivery_url": webhook.get("delivery_url"), "name": webhook.get("name"),
        "reactivated_count": record.reactivated_count if record else 0,
        "last_reactivated_at": record.last_reactivated_at if record else None,
        "last_found_status": record.last_found_status if record else None,
    }


def _reactivated(row: dict[str, Any], unknown: str | None) -> str:
    if row["id"] is None:
        return "-"
    if unknown:
        return "unknown"
    if not row["reactivated_count"]:
        return "never"
    at = row["last_reactivated_at"].strftime("%Y-%m-%d %H:%M UTC")
    return f"{at} (found {row['last_found_status']}; {row['reactivated_count']} time(s) in all)"
