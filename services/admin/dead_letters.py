"""Dead letters: from their RabbitMQ queues into the operators' table, and back.

Draining moves every message of the `.dead` queues into `dead_letters`: insert
(a duplicate of a row already there changes nothing), commit, and only then
acknowledge. A crash between the two leaves the message in its queue, and the
next drain inserts nothing new for it, so nothing is lost and nothing doubled.

`rewix-sync dlq` drains on every command, over a connection of its own. The
operator page drains from a thread of its own (`BackgroundDrain`) every
ADMIN_DEAD_LETTER_DRAIN_SECONDS over one connection it keeps, so a page load
reads only the table and never waits for RabbitMQ; a message dead-lettered
just now shows on the page within that interval.

Replay republishes the body unchanged to its original work queue with a fresh
attempt count and the same message id, waits for RabbitMQ's confirm, then marks
the row replayed. The consumers are idempotent, so replaying twice is harmless.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any

from pika.exceptions import AMQPError, ChannelClosedByBroker
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from shared.db import session_scope
from shared.db.models import DeadLetterRecord
from shared.failures import retry
from shared.messaging import topology
from shared.messaging.amqp import BrokerUnavailable, Publisher, connect
from shared.observability.logging import get_logger
from shared.orders.text import storable, storable_json, stored_reason

log = get_logger("admin.dead_letters")

DEAD_QUEUES = tuple(q.dead for q in topology.WORK_QUEUES)
# Marks a body stored as base64 because it was not UTF-8 text; never sent on replay.
BODY_ENCODING = "x-rewix-admin-body-encoding"
DRAIN_BATCH = 100
# How often the operator page's BackgroundDrain drains (ADMIN_DEAD_LETTER_DRAIN_SECONDS).
DRAIN_INTERVAL = 2.0
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
    try:
        return drain_over(connection, database_url, batch=batch)
    finally:
        _close(connection)


def drain_over(connection: Any, database_url: str, *, batch: int = DRAIN_BATCH) -> int:
    """`drain` over an open connection, which stays open; the channels it used are closed.

    Whatever was taken but not committed goes back to its queue with the channel.
    """
    taken = 0
    channel = None
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
        if channel is not None:
            _close(channel)
    return taken


def _close(closable: Any) -> None:
    try:
        if closable.is_open:
            closable.close()
    except Exception:  # an already broken connection: unacked messages return to their queue
        pass


@dataclass(frozen=True)
class DrainState:
    """How the background drain stands: its finished passes, when the last one ended, and why it failed if it did."""

    passes: int = 0
    finished_at: float | None = None  # time.monotonic()
    error: str | None = None


class BackgroundDrain:
    """`drain` every `interval` seconds in a thread of its own, over one connection it keeps.

    Between passes the connection serves its heartbeats (BlockingConnection.sleep);
    a connection that fails is dropped and the next pass opens a new one. The
    thread belongs to the process that started it (`start` again after a fork).
    """

    def __init__(self, amqp_url: str, database_url: str, interval: float = DRAIN_INTERVAL, *,
                 connect_timeout: float = 5.0) -> None:
        self.amqp_url, self.database_url = amqp_url, database_url
        self.interval = interval
        self.connect_timeout = connect_timeout
        self.connections_opened = 0
        self._changed = threading.Condition()
        self._state = DrainState()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    def start(self) -> "BackgroundDrain":
        """Start the thread unless it runs in this process already."""
        with self._changed:
            if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
                return self
            self._stop = threading.Event()
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="dead-letter-drain", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def state(self) -> DrainState:
        with self._changed:
            return self._state

    def wait_for_pass(self, after: int = 0, timeout: float = 10.0) -> DrainState:
        """The state once more than `after` passes have finished, or as it is after `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: self._state.passes > after, timeout)
            return self._state

    def _run(self) -> None:
        connection: Any = None
        stop = self._stop
        while not stop.is_set():
            error = None
            try:
                if connection is None or not connection.is_open:
                    connection = connect(self.amqp_url, connect_timeout=self.connect_timeout)
                    self.connections_opened += 1
                taken = drain_over(connection, self.database_url)
                if taken:
                    log.info("dead letters drained into the table", taken=taken)
            except BrokerUnavailable as exc:
                error = f"RabbitMQ unavailable, the dead-letter queues were not read: {exc}"
            except Exception as exc:  # the database, most likely: what was taken goes back with the connection
                error = f"The dead-letter queues were not drained: {str(exc).strip().splitlines()[0][:200]}"
            if error is not None:
                if connection is not None:
                    _close(connection)
                connection = None
                if self._state.error is None:  # once when it starts failing, not every pass
                    log.warning("dead-letter drain failed", error=error[:300])
            elif self._state.error is not None:
                log.info("dead-letter drain works again")
            with self._changed:
                self._state = DrainState(self._state.passes + 1, time.monotonic(), error)
                self._changed.notify_all()
            connection = self._pause(connection, stop)
        if connection is not None:
            _close(connection)

    def _pause(self, connection: Any, stop: threading.Event) -> Any:
        """Wait out the interval (or until stopped), serving the connection's heartbeats meanwhile."""
        deadline = time.monotonic() + self.interval
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if connection is None:
                stop.wait(left)
                break
            try:
                connection.sleep(min(left, 0.25))
            except Exception:  # the connection broke: the next pass opens another
                _close(connection)
                connection = None
        return connection


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
