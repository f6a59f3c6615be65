"""Hostile and careless input over the real HTTP, RabbitMQ and PostgreSQL: what is not an order is
refused by name and publishes nothing, an order's text is never a reason to refuse it (it is
cleaned before it is stored), and the other orders of the same burst go through all the same."""
from __future__ import annotations

import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Any

import pika
import requests
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from shared.clients.rewix import BOOKED, CONFIRMED
from shared.db import get_engine, session_scope
from shared.db.models import DeadLetterRecord
from shared.failures import retry
from shared.messaging import topology
from shared.messaging.amqp import message_properties
from services.admin.cli import main
from simulators.shop.orders import make_order
from simulators.shop.php_json import wp_json_encode
from tests.integration.test_admin_dlq import dead_letter, order_line
from tests.integration.test_admin_views import cli_env
from tests.integration.web_process import TOKEN, bearer, start
from tests.integration.ingest_process import SIMPLE, VARIATION, Ingest, published
from tests.integration.test_status_poller import SUPPLIER_LINE, PollerThread, World, status_messages
from tests.integration.test_status_poller import world  # noqa: F401
from tests.support import wait_until

LINES = topology.ORDER_LINES.name


def _now_gmt(delta: timedelta = timedelta()) -> str:
    return (datetime.now(timezone.utc).replace(tzinfo=None) + delta).isoformat(timespec="seconds")


def burst(ingest: Ingest, bodies: dict[int, dict[str, Any]]) -> dict[int, requests.Response]:
    """Every order delivered at once, from as many clients: order id -> the answer."""
    with ThreadPoolExecutor(8) as pool:
        answers = pool.map(lambda item: (item[0], ingest.order(item[1])), bodies.items())
        return dict(answers)


def good_orders(first_id: int, count: int) -> dict[int, dict[str, Any]]:
    return {order_id: make_order(order_id, lines=[VARIATION, SIMPLE]) for order_id in range(first_id, first_id + count)}


def assert_published_exactly(broker: str, orders: dict[int, dict[str, Any]]) -> None:
    """The good orders of the burst are on the broker, two lines each; nothing else is."""
    counts = Counter(m.order_id for m in published(broker))
    assert counts == Counter({order_id: 2 for order_id in orders}), counts


# -- limits at conversion: only what is not an order is refused; text never is ------------------------


def test_over_500_supplier_lines_or_a_status_longer_than_its_column_is_400_naming_it(
    ingest: Ingest, catalog: str, broker: str,
) -> None:
    good = good_orders(6100, 6)
    many_lines = make_order(6200, lines=[dict(VARIATION, quantity=1) for _ in range(501)])
    refused = {
        6200: (many_lines, "501 supplier lines; the limit is 500"),
        6202: (dict(make_order(6202, lines=[VARIATION]), status="s" * 51), "status is longer than 50 characters"),
    }
    answers = burst(ingest, {**good, **{order_id: body for order_id, (body, _) in refused.items()}})
    for order_id, (_, named) in refused.items():
        assert answers[order_id].status_code == 400, (order_id, answers[order_id].text)
        assert named in answers[order_id].json()["error"]
    assert all(answers[order_id].status_code == 200 for order_id in good)
    assert_published_exactly(broker, good)
    # At the limit itself the order goes through, one message per line.
    at_limit = make_order(6205, lines=[dict(VARIATION, quantity=1) for _ in range(500)], number="N" * 100)
    assert ingest.order(at_limit).status_code == 200
    assert len(published(broker)) == 500


def test_text_longer_than_the_supplier_or_a_column_takes_is_published_not_refused(
    ingest: Ingest, catalog: str, broker: str,
) -> None:
    """Customers type these and WooCommerce stores them: each order goes on, in a burst with others."""
    street, phone = "Via Roma " * 30, "+39 333 1234567 " + "chiamare prima della consegna " * 2
    odd = {
        6201: make_order(6201, lines=[VARIATION, SIMPLE], number="N" * 101),
        6203: make_order(6203, lines=[VARIATION, SIMPLE], shipping={"address_1": street}),
        6204: make_order(6204, lines=[VARIATION, SIMPLE], billing={"phone": "0" * 60}, shipping={"phone": ""}),
        6206: make_order(6206, lines=[VARIATION, SIMPLE], shipping={"phone": phone, "country": "ITALIA"}),
    }
    good = good_orders(6110, 4)
    answers = burst(ingest, {**good, **odd})
    assert all(answer.status_code == 200 for answer in answers.values()), {i: a.text for i, a in answers.items()}
    heads = {m.order_id: m for m in published(broker) if m.head}
    assert set(heads) == set(good) | set(odd)
    # Taken whole: the supplier's limits are met when the order is sent, where the owner is told.
    assert heads[6201].order_number == "N" * 99 + "\u2026"  # cut for its column, marked as cut
    assert heads[6203].recipient.address_1 == street.strip()
    assert heads[6204].recipient.phone == "0" * 60
    assert (heads[6206].recipient.phone, heads[6206].recipient.country) == (phone.strip(), "ITALIA")


def test_a_customer_note_over_2000_characters_is_carried_whole_for_the_sending_to_fit(
    ingest: Ingest, catalog: str, broker: str,
) -> None:
    assert ingest.order(make_order(6300, lines=[VARIATION], customer_note="é" * 5000)).status_code == 200
    [message] = published(broker)
    assert message.customer_note == "é" * 5000


# -- dates -------------------------------------------------------------------------------------------


def test_a_date_more_than_a_day_ahead_is_400_and_does_not_freeze_the_order(
    ingest: Ingest, catalog: str, broker: str,
) -> None:
    good = good_orders(6400, 6)
    far = make_order(6500, lines=[VARIATION])
    far["date_modified_gmt"] = "9999-12-31T23:59:59"
    ahead = make_order(6501, lines=[VARIATION])
    ahead["date_modified_gmt"] = _now_gmt(timedelta(days=1, minutes=5))
    answers = burst(ingest, {**good, 6500: far, 6501: ahead})
    for order_id in (6500, 6501):
        assert answers[order_id].status_code == 400
        assert answers[order_id].headers["Content-Type"] == "application/json"
        assert "more than a day in the future" in answers[order_id].json()["error"]
    assert_published_exactly(broker, good)

    # The order's real next state is taken as if the hostile one had never come.
    far["date_modified_gmt"] = _now_gmt()
    assert ingest.order(far).status_code == 200
    [message] = published(broker)
    assert message.order_id == 6500 and message.date_modified_gmt.year == datetime.now(timezone.utc).year


def test_the_catch_up_watermark_never_moves_to_a_far_future_date(world: World) -> None:
    world.map_supplier_line()
    now = datetime.now(timezone.utc).replace(microsecond=0)
    real = world.shop.state.create_order(status="on-hold", lines=[SUPPLIER_LINE], date_created_gmt=now - timedelta(minutes=5))
    hostile = world.shop.state.create_order(status="on-hold", lines=[SUPPLIER_LINE],
                                            date_created_gmt=datetime(9999, 12, 30, tzinfo=timezone.utc))

    def run_pass() -> tuple[Any, list[Any]]:
        # Gone live an hour ago: the real order is after that.
        return world.catchup_pass(go_live_at=now - timedelta(hours=1))

    first, lines = run_pass()
    assert {m.order_id for m in lines} == {real["id"]}  # the far-future order publishes nothing
    assert first.invalid == 1
    assert first.watermark < now + timedelta(minutes=1)
    with world.engine.connect() as c:
        stored = c.execute(text("SELECT value FROM sync_state WHERE name = 'shop_catchup_watermark'")).scalar_one()
    assert datetime.fromisoformat(stored) < now + timedelta(minutes=1)

    # The catch-up still sees what changes next.
    later = world.shop.state.create_order(status="on-hold", lines=[SUPPLIER_LINE])
    second, lines = run_pass()
    assert later["id"] in {m.order_id for m in lines}
    assert second.watermark < now + timedelta(hours=1)


# -- metrics labels ------------------------------------------------------------------------------------


def test_invented_topics_count_as_other_and_create_no_series(ingest: Ingest, catalog: str, broker: str) -> None:
    body = wp_json_encode(make_order(6600, lines=[VARIATION]))
    before_other = ingest.metric("rewix_ingest_other_topics_total", topic="other")
    before_product = ingest.metric("rewix_ingest_other_topics_total", topic="product.updated")
    invented = [f"invented.topic-{n}" for n in range(40)]
    good = good_orders(6700, 4)
    with ThreadPoolExecutor(8) as pool:
        other_answers = list(pool.map(lambda topic: ingest.post(body, topic), invented + ["product.updated"]))
        good_answers = list(pool.map(ingest.order, good.values()))
    assert all(a.status_code == 202 for a in other_answers)
    assert all(a.status_code == 200 for a in good_answers)
    exposition = ingest.get("/metrics").text
    assert "invented.topic" not in exposition
    assert ingest.metric("rewix_ingest_other_topics_total", topic="other") == before_other + 40
    assert ingest.metric("rewix_ingest_other_topics_total", topic="product.updated") == before_product + 1
    assert_published_exactly(broker, good)  # nothing for the other topics


# -- storable text: dead letters ---------------------------------------------------------------------------


def test_a_dead_letter_with_nul_in_reason_and_headers_is_drained_listed_and_shown(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    hostile = order_line(4801)
    dead_letter(broker, hostile.to_bytes(), hostile.message_id,
                reason="POST orders/0/dropshipping: HTTP 400: bad\x00 recipient zoe.muller@example.com +48 42 123 45 67")
    # A header of the shop's own, quoting a body with a NUL in it.
    shop_route = retry.route_failure(retry.DeadLetter("refused\x00", 400), {"x-shop-error\x00": "a\x00b"},
                                             topology.ORDER_LINES, [1, 2])
    other = order_line(4802)
    conn = pika.BlockingConnection(pika.URLParameters(broker))
    channel = conn.channel()
    channel.confirm_delivery()
    channel.basic_publish("", shop_route.routing_key, other.to_bytes(),
                          properties=message_properties(other.message_id, shop_route.headers), mandatory=True)
    conn.close()
    # A well-behaved letter in the same queue is drained with them.
    plain = order_line(4803)
    dead_letter(broker, plain.to_bytes(), plain.message_id)

    listing = CliRunner().invoke(main, ["dlq", "list", "--json"], env=env, catch_exceptions=False)
    assert listing.exit_code == 0, listing.output
    rows = {row["order_id"]: row for row in json.loads(listing.output)}
    assert set(rows) == {4801, 4802, 4803}
    reason = rows[4801]["reason"]
    assert "\x00" not in reason and reason.startswith("POST orders/0/dropshipping: HTTP 400: bad recipient")
    assert "zoe.muller@example.com" not in reason and "123 45 67" not in reason and "[email]" in reason
    assert rows[4802]["reason"] == "refused"

    shown = CliRunner().invoke(main, ["dlq", "show", str(rows[4802]["id"])], env=env, catch_exceptions=False)
    assert shown.exit_code == 0, shown.output
    assert "refused" in shown.output and "\x00" not in shown.output
    with session_scope(db) as session:
        stored = session.scalars(select(DeadLetterRecord).where(DeadLetterRecord.order_id == 4802)).one()
        assert stored.headers["x-shop-error"] == "ab"

    web = start(db, broker, ADMIN_TOKEN=TOKEN)
    try:
        page = requests.get(web.url + "/?dead_letters=all", headers=bearer(), timeout=15)
        assert page.status_code == 200
        for row in rows.values():  # each letter's row, its reason as stored
            assert f'action="/dead-letters/{row["id"]}/replay"' in page.text
        assert "bad recipient [email] [phone]" in page.text and "\x00" not in page.text
    finally:
        web.stop()


# -- storable text: the status poller's error write --------------------------------------------------------


def test_the_pollers_error_write_with_nul_succeeds_and_no_change_is_announced_twice(world: World) -> None:
    error_body = "upstream\x00 failure for zoe.muller@example.com\x00"
    failing = world.open_order()
    # Every poll of the only open order fails with that body: the error must still be written.
    world.rewix.state.configure_faults({"fail_next": {"status": 500, "count": 10_000, "body": error_body}})
    with PollerThread(world, interval=0.5, per_second=50):
        wait_until(lambda: world.supplier_row(failing["row_id"])["last_error"], what="the poll error recorded")
    stored = world.supplier_row(failing["row_id"])["last_error"]
    assert stored.startswith("status poll: ") and "HTTP 500: upstream failure for [email]" in stored
    assert "\x00" not in stored and "zoe.muller" not in stored

    # Two orders change; one poll of the batch fails with the NUL body. The other's change is
    # recorded with it, so it is announced once, not again every cycle.
    world.rewix.state.clear_faults()
    changed = world.open_order()
    for order in (failing, changed):
        world.control.set_status(order["supplier_order_id"], CONFIRMED)
    world.rewix.state.configure_faults({"fail_next": {"status": 500, "count": 1, "body": error_body}})
    with PollerThread(world, interval=0.5, per_second=50):
        wait_until(lambda: all(world.supplier_row(o["row_id"])["status"] == CONFIRMED for o in (failing, changed)),
                   what="both changes recorded")
        wait_until(lambda: all(world.supplier_row(o["row_id"])["last_polled_at"] is not None for o in (failing, changed)),
                   what="both polled")
        time.sleep(2.0)  # four more poll intervals: a change that was not recorded would be sent again
    # Without the applier running the poller repeats a status until it has a history row, with
    # old_status None; the change itself (Booked -> Confirmed) is announced once per order.
    announced = Counter(m.supplier_order_id for m in status_messages(world.amqp_url)
                        if (m.old_status, m.new_status) == (BOOKED, CONFIRMED))
    assert announced == Counter({failing["supplier_order_id"]: 1, changed["supplier_order_id"]: 1}), announced


# -- masking: a database error does not quote the statement's parameters -------------------------------------


def test_a_database_error_does_not_quote_the_customer(db: str) -> None:
    with get_engine(db).connect() as conn:
        try:
            # The recipient is JSONB; a number over String(100) makes PostgreSQL refuse the row.
            conn.execute(
                text("INSERT INTO shop_orders (id, number, status, deleted, customer_note, supplier_line_ids, recipient)"
                     " VALUES (1, :number, 'pending', false, :note, '[]', CAST(:recipient AS jsonb))"),
                {"number": "N" * 101, "note": "Ring Zoë Müller at +48 42 123 45 67",
                 "recipient": json.dumps({"name": "Zoë Müller", "address_1": "ul. Piotrkowska 104/2"})},
            )
        except DBAPIError as exc:
            error = str(exc)
        else:
            raise AssertionError("PostgreSQL took a number over its column")
    assert "value too long" in error
    for private in ("Zoë", "Müller", "Piotrkowska", "123 45 67"):
        assert private not in error, error
