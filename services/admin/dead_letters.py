"""Dead letters: from their RabbitMQ queues into the operators' table, and back.

Draining moves every message of the `.dead` queues into `dead_letters`: insert
(a duplicate of a row already there changes nothing), commit, and only then
acknowledge. A crash between the two leaves the message in its queue, and the
next drain inserts nothing new for it, so nothing is lost and nothing doubled.

Replay republishes the body unchanged to its original work queue with a fresh
attempt count and the same message id, waits for RabbitMQ's confirm, then marks
the row replayed. The consumers are idempotent, so replaying twice is harmless.
"""
from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from pika.exceptions import AMQPError, ChannelClosedByBroker
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared import retry, topology
from shared.amqp import BrokerUnavailable, Publisher, connect
from shared.db import session_scope
from shared.db.models import DeadLetterRecord
from shared.text import storable, storable_json, stored_reason

DEAD_QUEUES = tuple(q.dead for q in topology.WORK_QUEUES)
# Marks a body stored as base64 because it was not UTF-8 text; never sent on replay.
BODY_ENCODING = "x-rewix-admin-body-encoding"
DRAIN_BATCH = 100
# Headers RabbitMQ sets itself on delivery and dead-lettering: a replay starts without them.
BROKER_HEADERS = ("x-delivery-count", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason",
                  "x-last-death-exchange", "x-last-death-queue", "x-last-death-reason")


class UnknownDeadLetter(LookupError):
    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = sorted(ids)
        super().__init__("no dead letter with id " + ", ".join(str(i) for i in self.ids))


# --- reading one dead-lettered message (pure) ----------------------------------------


def json_value(value: Any) -> Any:
    """AMQP header values (timestamps, bytes, decimals, nested tables) as JSON values."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def order_id_in_message(body: bytes) -> int | None:
    """The shop order a message is about, when its body parses far enough to say."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    for key in ("order_id", "shop_order_id"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
            return value
    return None


def _death_by_broker(headers: Mapping[str, Any], work_queue: str) -> Mapping[str, Any] | None:
    """The x-death entry of RabbitMQ moving the message out of its work queue, if it did."""
    deaths = headers.get("x-death")
    if not isinstance(deaths, list):
        return None
    for death in deaths:
        if isinstance(death, Mapping) and _text(death.get("queue")) == work_queue:
            return death
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, datetime):
        return json_value(value)
    return str(value)


def record_values(dead_queue: str, message_id: str | None, headers: Mapping[str, Any] | None, body: bytes) -> dict[str, Any]:
    """The dead_letters row for one message taken from `dead_queue`."""
    headers = dict(headers or {})
    work_queue = dead_queue.removesuffix(".dead")
    # Header values come from anywhere (an error text quoting the supplier or the shop):
    # a NUL in one would make PostgreSQL refuse the whole batch, and the drain, for good.
    stored_headers = storable_json(json_value(headers))
    if isinstance(stored_headers.get(retry.REASON), str):
        stored_headers[retry.REASON] = stored_reason(stored_headers[retry.REASON])
    try:
        text_body = body.decode("utf-8")
        if "\x00" in text_body:  # PostgreSQL text cannot hold NUL
            raise UnicodeDecodeError("utf-8", body, 0, 1, "NUL")
    except UnicodeDecodeError:
        text_body = base64.b64encode(body).decode("ascii")
        stored_headers[BODY_ENCODING] = "base64"
    if not message_id:
        # Without an id a message is known by its content (stable across drains).
        message_id = "sha256:" + hashlib.sha256(body).hexdigest()[:40]

    death = _death_by_broker(headers, work_queue)
    if death is not None:
        # RabbitMQ itself gave up (quorum delivery limit): the worker crashed on it every time.
        cause = _text(death.get("reason")) or "unknown"
        reason = "delivery limit exceeded" if cause == "delivery_limit" else f"dead-lettered by RabbitMQ: {cause}"
        queue = _text(death.get("queue")) or work_queue
        died_at = _text(death.get("time"))
        attempts = retry.attempts_of(headers) + topology.DELIVERY_LIMIT
        first = _text(headers.get(retry.FIRST_FAILED_AT)) or died_at
        last = died_at
    else:
        reason = _text(headers.get(retry.REASON)) or "no reason recorded"
        queue = _text(headers.get(retry.QUEUE)) or work_queue
        attempts = retry.attempts_of(headers)
        first = _text(headers.get(retry.FIRST_FAILED_AT))
        last = _text(headers.get(retry.LAST_FAILED_AT))
    first, last = storable(first or ""), storable(last or "")
    return {
        "queue": storable(queue)[:200],
        "message_id": storable(str(message_id))[:100],
        "order_id": order_id_in_message(body),
        "body": text_body,
        "headers": stored_headers,
        # Masked (e-mails, phones, URL credentials): a reason may quote an error body.
        "reason": stored_reason(reason),
        "attempts": attempts,
        "first_failed_at": first[:40] or None,
        # "" rather than NULL: the unique key must see two drains of the same message as equal.
        "last_failed_at": last[:40],
    }


def body_bytes(record: DeadLetterRecord) -> bytes:
    if (record.headers or {}).get(BODY_ENCODING) == "base64":
        return base64.b64decode(record.body)
    return record.body.encode("utf-8")


def replay_headers(record: DeadLetterRecord) -> dict[str, Any]:
    headers = {k: v for k, v in (record.headers or {}).items() if k != BODY_ENCODING and k not in BROKER_HEADERS}
    return retry.fresh_headers(headers)


def as_dict(record: DeadLetterRecord) -> dict[str, Any]:
    """The contract's JSON fields (docs/interfaces.md, `dlq list --json`) and a little more."""
    return {
        "id": record.id,
        "queue": record.queue,
        "message_id": record.message_id,
        "order_id": record.order_id,
        "reason": record.reason,
        "attempts": record.attempts,
        "first_failed_at": record.first_failed_at,
        "last_failed_at": record.last_failed_at or None,
        "http_status": (record.headers or {}).get(retry.HTTP_STATUS),
        "recorded_at": record.recorded_at.isoformat() if record.recorded_at else None,
        "replayed_at": record.replayed_at.isoformat() if record.replayed_at else None,
    }


# --- the queues -> the table ------------------------------------------------------------


def drain(amqp_url: str, database_url: str, *, batch: int = DRAIN_BATCH) -> int:
    """Move every message of the dead-letter queues into the table; returns how many were taken."""
    connection = connect(amqp_url)  # BrokerUnavailable when RabbitMQ is down
    taken = 0
    try:
        channel = connection.channel()
        for queue in DEAD_QUEUES:
            while True:
                try:
                    got = _take(channel, queue, batch)
                except ChannelClosedByBroker as exc:
                    if exc.reply_code != 404:
                        raise
                    channel = connection.channel()  # no such queue yet: nothing dead-lettered there
                    break
                if not got:
                    break
                with session_scope(database_url) as session:
                    session.execute(
                        insert(DeadLetterRecord)
                        .values([values for _, values in got])
                        .on_conflict_do_nothing(constraint="uq_dead_letter_once")
                    )
                # Committed: only now may RabbitMQ forget them.
                channel.basic_ack(got[-1][0], multiple=True)
                taken += len(got)
                if len(got) < batch:
                    break
    except AMQPError as exc:
        raise BrokerUnavailable(f"RabbitMQ failed while draining dead letters: {exc!r}") from exc
    finally:
        try:
            connection.close()
        except Exception:  # an already broken connection: unacked messages return to their queue
            pass
    return taken


def _take(channel: Any, queue: str, batch: int) -> list[tuple[int, dict[str, Any]]]:
    got = []
    for _ in range(batch):
        method, properties, body = channel.basic_get(queue, auto_ack=False)
        if method is None:
            break
        got.append((method.delivery_tag, record_values(queue, properties.message_id, properties.headers, body)))
    return got


# --- the table --------------------------------------------------------------------------


def all_records(session: Session) -> list[DeadLetterRecord]:
    return list(session.scalars(select(DeadLetterRecord).order_by(DeadLetterRecord.id)))


def find(session: Session, ids: Iterable[int] | None) -> list[DeadLetterRecord]:
    """The named rows (all of them, or UnknownDeadLetter), or every row for ids=None."""
    if ids is None:
        return all_records(session)
    wanted = sorted(set(ids))
    rows = list(session.scalars(select(DeadLetterRecord).where(DeadLetterRecord.id.in_(wanted)).order_by(DeadLetterRecord.id)))
    missing = set(wanted) - {r.id for r in rows}
    if missing:
        raise UnknownDeadLetter(missing)
    return rows


@dataclass(frozen=True)
class Replayed:
    id: int
    queue: str
    message_id: str
    order_id: int | None


def replay(database_url: str, amqp_url: str, ids: Iterable[int] | None) -> list[Replayed]:
    """Republish the named rows (or, for ids=None, every row not replayed yet) to their work queues."""
    with session_scope(database_url) as session:
        if ids is None:
            rows = list(
                session.scalars(
                    select(DeadLetterRecord).where(DeadLetterRecord.replayed_at.is_(None)).order_by(DeadLetterRecord.id)
                )
            )
        else:
            rows = find(session, ids)
        for row in rows:
            topology.work_queue(row.queue)  # KeyError before anything is sent
    done: list[Replayed] = []
    if not rows:
        return done
    publisher = Publisher(amqp_url)
    try:
        for row in rows:
            queue = topology.work_queue(row.queue)
            publisher.publish(
                body_bytes(row),
                routing_key=queue.routing_key,
                message_id=row.message_id,
                headers=replay_headers(row),
            )
            with session_scope(database_url) as session:
                session.execute(
                    update(DeadLetterRecord)
                    .where(DeadLetterRecord.id == row.id)
                    .values(replayed_at=datetime.now(timezone.utc))
                )
            done.append(Replayed(row.id, row.queue, row.message_id, row.order_id))
    finally:
        publisher.close()
    return done


def delete_records(session: Session, rows: list[DeadLetterRecord]) -> None:
    if rows:
        session.execute(delete(DeadLetterRecord).where(DeadLetterRecord.id.in_([r.id for r in rows])))
