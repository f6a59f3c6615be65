"""`rewix-sync dlq …` against the real broker and database."""
from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pika
from click.testing import CliRunner
from sqlalchemy import func, select

from shared.db import session_scope
from shared.db.models import DeadLetterRecord
from shared.failures import retry
from shared.messaging import topology
from shared.messaging.amqp import message_properties
from shared.messaging.messages import OrderLineMessage, StatusChangeMessage, SupplierLine
from services.admin import dead_letters
from services.admin.cli import main
from tests.conftest import drain, queue_depth
from tests.integration.test_admin_views import cli_env, run

FAILED_AT = datetime(2026, 11, 26, 9, 0, 5, tzinfo=timezone.utc)


def order_line(order_id: int = 4711) -> OrderLineMessage:
    return OrderLineMessage(
        topic="order.updated", order_id=order_id, order_number=str(order_id), status="pending",
        date_modified_gmt=datetime(2026, 11, 26, 9, 0, tzinfo=timezone.utc),
        line=SupplierLine(line_id=1, product_id=2101, variation_id=2104, stock_id=100001, quantity=2),
        supplier_line_ids=[1],
    )


def dead_letter(amqp_url: str, body: bytes, message_id: str | None, queue: topology.WorkQueue = topology.ORDER_LINES,
                reason: str = "POST /restful/ghost/orders/sold: HTTP 400: stock_id 100001 is not orderable",
                status: int | None = 400, now: datetime = FAILED_AT) -> dict:
    """Put a message on the dead-letter queue exactly as the consumer does."""
    route = retry.route_failure(retry.DeadLetter(reason, status), {"x-custom": "kept"}, queue, [1, 2], now=now)
    assert route.dead
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    properties = message_properties(message_id or "", route.headers)
    if message_id is None:
        properties.message_id = None
    channel.basic_publish("", route.routing_key, body, properties=properties, mandatory=True)
    connection.close()
    return route.headers


def listed(env: dict[str, str], *flags: str) -> list[dict]:
    result = run(["dlq", "list", "--json", *flags], env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def count_rows(database_url: str) -> int:
    with session_scope(database_url) as s:
        return s.scalar(select(func.count()).select_from(DeadLetterRecord))


def test_list_drains_the_dead_queues_into_the_table(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    message = order_line()
    dead_letter(broker, message.to_bytes(), message.message_id)
    status = StatusChangeMessage(supplier_order_id=9001, shop_order_id=4712, order_key="4712", old_status=5,
                                 new_status=2, observed_at=FAILED_AT)
    dead_letter(broker, status.to_bytes(), status.message_id, queue=topology.STATUS_CHANGES,
                reason="shop PUT /orders/4712: 404 woocommerce_rest_shop_order_invalid_id: Invalid ID.", status=404)

    rows = listed(env)
    assert queue_depth(broker, topology.ORDER_LINES.dead) == 0
    assert queue_depth(broker, topology.STATUS_CHANGES.dead) == 0
    assert len(rows) == 2
    first, second = rows
    assert first["queue"] == "rewix.order_lines" and first["order_id"] == 4711
    assert first["message_id"] == message.message_id
    assert first["reason"].startswith("POST /restful/ghost/orders/sold: HTTP 400")
    assert first["attempts"] == 1 and first["http_status"] == 400
    assert first["first_failed_at"] == first["last_failed_at"] == FAILED_AT.isoformat()
    assert first["replayed_at"] is None
    assert second["queue"] == "rewix.status_changes" and second["order_id"] == 4712
    assert set(first) >= {"id", "queue", "order_id", "reason", "attempts", "first_failed_at", "last_failed_at"}

    assert listed(env) == rows  # a second look changes nothing

    table = run(["dlq", "list"], env).output
    assert table.splitlines()[0].split()[:3] == ["ID", "Queue", "Order"]
    assert "rewix.status_changes" in table and "Invalid ID." in table


def test_a_message_drained_twice_is_recorded_once(db: str, broker: str) -> None:
    """A crash after the commit and before the ack puts the same message back: it must not be doubled."""
    message = order_line()
    dead_letter(broker, message.to_bytes(), message.message_id)
    dead_letter(broker, message.to_bytes(), message.message_id)  # the redelivered copy
    assert dead_letters.drain(broker, db) == 2
    assert count_rows(db) == 1
    # Failing again later (after a replay) is a new dead letter.
    dead_letter(broker, message.to_bytes(), message.message_id, now=datetime(2026, 11, 26, 10, tzinfo=timezone.utc))
    assert dead_letters.drain(broker, db) == 1
    assert count_rows(db) == 2


def test_a_database_failure_leaves_the_messages_in_their_queue(db: str, broker: str) -> None:
    message = order_line()
    dead_letter(broker, message.to_bytes(), message.message_id)
    result = CliRunner().invoke(main, ["dlq", "list"], env=cli_env("postgresql://postgres@127.0.0.1:1/x", broker))
    assert result.exit_code == 2 and "database unavailable" in result.output
    assert queue_depth(broker, topology.ORDER_LINES.dead) == 1


def test_delivery_limit_dead_letters_have_only_x_death(db: str, broker: str) -> None:
    """A message that crashed its worker every time: RabbitMQ moves it to .dead by itself."""
    message = order_line(5150)
    connection = pika.BlockingConnection(pika.URLParameters(broker))
    channel = connection.channel()
    channel.basic_publish(topology.EXCHANGE, topology.ORDER_LINE, message.to_bytes(),
                          properties=message_properties(message.message_id))
    deadline = time.monotonic() + 30
    while queue_depth(broker, topology.ORDER_LINES.dead) == 0:
        assert time.monotonic() < deadline, "RabbitMQ never dead-lettered the message"
        method, _, _ = channel.basic_get(topology.ORDER_LINES.name)
        if method is not None:
            channel.basic_nack(method.delivery_tag, requeue=True)
    connection.close()

    (row,) = listed(cli_env(db, broker))
    assert row["reason"] == "delivery limit exceeded"
    assert row["queue"] == "rewix.order_lines" and row["order_id"] == 5150
    assert row["message_id"] == message.message_id
    assert row["last_failed_at"] and row["first_failed_at"] == row["last_failed_at"]

    # Replayed, it goes back without the x-death that would make RabbitMQ count it again.
    assert run(["dlq", "replay", str(row["id"])], cli_env(db, broker)).exit_code == 0
    ((properties, body),) = drain(broker, topology.ORDER_LINES.name)
    assert body == message.to_bytes() and "x-death" not in (properties.headers or {})


def test_show_prints_reason_headers_and_body(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    message = order_line()
    dead_letter(broker, message.to_bytes(), message.message_id)
    (row,) = listed(env)
    result = run(["dlq", "show", str(row["id"])], env)
    assert result.exit_code == 0, result.output
    assert f"id:              {row['id']}" in result.output
    assert "reason:          POST /restful/ghost/orders/sold: HTTP 400" in result.output
    assert '"x-rewix-attempts": 1' in result.output and '"stock_id": 100001' in result.output

    shown = json.loads(run(["dlq", "show", str(row["id"]), "--json"], env).output)
    assert json.loads(shown["body"]) == json.loads(message.to_bytes())
    assert shown["headers"]["x-custom"] == "kept"

    missing = CliRunner().invoke(main, ["dlq", "show", "999999"], env=env)
    assert missing.exit_code == 2 and missing.output == "Error: no dead letter with id 999999\n"


def test_replay_puts_the_message_back_unchanged_but_for_a_fresh_attempt_count(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    message = order_line()
    original_headers = dead_letter(broker, message.to_bytes(), message.message_id)
    other = order_line(4800)
    dead_letter(broker, other.to_bytes(), other.message_id)
    rows = listed(env)

    result = run(["dlq", "replay", str(rows[0]["id"])], env)
    assert result.exit_code == 0, result.output
    assert f"replayed {rows[0]['id']} to rewix.order_lines (order 4711" in result.output
    ((properties, body),) = drain(broker, topology.ORDER_LINES.name)
    assert body == message.to_bytes()
    assert properties.message_id == message.message_id
    assert properties.delivery_mode == 2
    # x-delivery-count is the work queue's own, set as it hands the message out.
    assert {k: v for k, v in properties.headers.items() if k != "x-delivery-count"} == {"x-custom": "kept"}
    assert retry.ATTEMPTS in original_headers

    after = {r["id"]: r for r in listed(env, "--all")}
    assert after[rows[0]["id"]]["replayed_at"] is not None
    assert after[rows[1]["id"]]["replayed_at"] is None

    # Safe to repeat: the consumer is idempotent, so a second copy changes nothing.
    assert run(["dlq", "replay", str(rows[0]["id"])], env).exit_code == 0
    assert len(drain(broker, topology.ORDER_LINES.name)) == 1

    # --all replays what has not been replayed yet.
    result = run(["dlq", "replay", "--all"], env)
    assert "1 dead letter(s) replayed" in result.output
    ((properties, body),) = drain(broker, topology.ORDER_LINES.name)
    assert body == other.to_bytes()
    assert "0 dead letter(s) replayed" in run(["dlq", "replay", "--all"], env).output


def test_replay_of_status_change_goes_to_its_own_queue(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    status = StatusChangeMessage(supplier_order_id=9001, shop_order_id=4712, order_key="4712", old_status=5,
                                 new_status=2, observed_at=FAILED_AT)
    dead_letter(broker, status.to_bytes(), status.message_id, queue=topology.STATUS_CHANGES)
    (row,) = listed(env)
    assert run(["dlq", "replay", str(row["id"])], env).exit_code == 0
    ((properties, body),) = drain(broker, topology.STATUS_CHANGES.name)
    assert body == status.to_bytes() and properties.message_id == status.message_id
    assert queue_depth(broker, topology.ORDER_LINES.name) == 0


def test_poison_bodies_are_kept_byte_for_byte(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    poison = b"\xff\xfe not json \x00 at all"
    dead_letter(broker, poison, None, reason="message does not parse")
    (row,) = listed(env)
    assert row["order_id"] is None and row["message_id"].startswith("sha256:")
    assert run(["dlq", "replay", str(row["id"])], env).exit_code == 0
    ((properties, body),) = drain(broker, topology.ORDER_LINES.name)
    assert body == poison
    assert dead_letters.BODY_ENCODING not in (properties.headers or {})


def test_purge_prints_then_drops(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    for order_id in (1, 2, 3):
        message = order_line(order_id)
        dead_letter(broker, message.to_bytes(), message.message_id)
    ids = [r["id"] for r in listed(env)]
    result = run(["dlq", "purge", str(ids[0])], env)
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"dropping {ids[0]}: rewix.order_lines order 1 message ")
    assert "1 dead letter(s) purged" in result.output
    assert [r["id"] for r in listed(env)] == ids[1:]

    unknown = CliRunner().invoke(main, ["dlq", "purge", str(ids[1]), "424242"], env=env)
    assert unknown.exit_code == 2 and "no dead letter with id 424242" in unknown.output
    assert count_rows(db) == 2  # all or nothing

    result = run(["dlq", "purge", "--all"], env)
    assert "2 dead letter(s) purged" in result.output
    assert listed(env) == []


def test_replay_and_purge_need_ids_or_all(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    for verb in ("replay", "purge"):
        result = CliRunner().invoke(main, ["dlq", verb], env=env)
        assert result.exit_code == 2 and "--all" in result.output
        result = CliRunner().invoke(main, ["dlq", verb, "1", "--all"], env=env)
        assert result.exit_code == 2


def test_broker_down_fails_with_one_line(db: str) -> None:
    env = cli_env(db, "amqp://guest:guest@127.0.0.1:1/%2F")
    for command in (["dlq", "list"], ["dlq", "replay", "--all"], ["dlq", "purge", "--all"]):
        result = CliRunner().invoke(main, command, env=env)
        assert result.exit_code == 2, result.output
        assert result.output.startswith("Error: RabbitMQ unavailable") and result.output.count("\n") == 1


def test_bad_credentials_fail_with_one_line(db: str, amqp_url: str) -> None:
    bad = amqp_url.replace("guest:guest@", "guest:wrong@")
    result = CliRunner().invoke(main, ["dlq", "list"], env=cli_env(db, bad))
    assert result.exit_code == 2 and result.output.startswith("Error: RabbitMQ unavailable")


def test_list_shows_what_still_waits_and_all_adds_the_replayed(db: str, broker: str) -> None:
    env = cli_env(db, broker)
    replayed, waiting = order_line(4901), order_line(4902)
    for message in (replayed, waiting):
        dead_letter(broker, message.to_bytes(), message.message_id)
    rows = {r["order_id"]: r for r in listed(env)}
    assert run(["dlq", "replay", str(rows[4901]["id"])], env).exit_code == 0
    drain(broker, topology.ORDER_LINES.name)

    assert [r["order_id"] for r in listed(env)] == [4902]
    table = run(["dlq", "list"], env).output
    assert " 4902 " in table and " 4901 " not in table

    everything = {r["order_id"]: r for r in listed(env, "--all")}
    assert sorted(everything) == [4901, 4902]
    assert everything[4901]["replayed_at"] is not None and everything[4902]["replayed_at"] is None
    table = run(["dlq", "list", "--all"], env).output
    assert "Replayed" in table.splitlines()[0] and " 4901 " in table and " 4902 " in table

    assert run(["dlq", "replay", "--all"], env).exit_code == 0
    assert listed(env) == []
    assert "no dead letters wait for an operator" in run(["dlq", "list"], env).output
    assert len(listed(env, "--all")) == 2
