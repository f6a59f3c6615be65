"""The status poller's SQL: leases, batched write-back, status history, the catch-up watermark.

A poll cycle costs a fixed handful of statements whatever the number of
orders: one to size the work, one to lease a batch of rows (`FOR UPDATE SKIP
LOCKED`, so replicas never lease the same row), one to write the whole batch's
results back (arrays unnested into one UPDATE).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import Connection, Engine, text

from shared.orders.text import storable, stored_reason

# Errors the poller writes start with this, so a later good poll clears only its own.
POLL_ERROR_PREFIX = "status poll: "
CATCHUP_WATERMARK = "shop_catchup_watermark"
# A moment the next catch-up pass must look back to (the webhook check sets it when it finds a webhook off).
CATCHUP_REWIND = "shop_catchup_rewind"
GO_LIVE = "shop_go_live_at"


@dataclass(frozen=True)
class OpenOrders:
    count: int
    next_due: datetime | None
    db_now: datetime


@dataclass(frozen=True, slots=True)
class Lease:
    """An open supplier order leased for one poll, with what we last recorded of it."""

    id: int
    shop_order_id: int
    key: str
    supplier_order_id: int | None
    status: int
    tracking_code: str | None
    tracking_url: str | None
    carrier_name: str | None
    # The status on record already has its history row (the applier has seen it).
    announced: bool
    # When the poll is due (database clock); the lease holds until planned + hold.
    planned: datetime


@dataclass(frozen=True, slots=True)
class PollRecord:
    """What to write back for one leased row."""

    id: int
    next_poll_at: datetime
    polled_at: datetime | None = None  # None: not polled (released)
    recorded: bool = False  # the status fields below are the new truth
    status: int | None = None
    substatus: int | None = None
    tracking_code: str | None = None
    tracking_url: str | None = None
    carrier_name: str | None = None
    final: bool = False
    supplier_order_id: int | None = None
    error: str | None = None  # None keeps the row's error, unless clear_error
    clear_error: bool = False


def open_orders(engine: Engine) -> OpenOrders:
    with engine.connect() as conn:
        count, next_due, db_now = conn.execute(
            text("SELECT count(*), min(next_poll_at), now() FROM supplier_orders WHERE NOT final")
        ).one()
        conn.rollback()
    return OpenOrders(int(count), next_due, db_now)


LEASE_SQL = text(
    """
    WITH due AS (
        SELECT id, GREATEST(next_poll_at, now()) AS planned
        FROM supplier_orders
        WHERE NOT final AND next_poll_at <= now() + make_interval(secs => :lookahead)
        ORDER BY next_poll_at
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    )
    UPDATE supplier_orders s
    SET next_poll_at = due.planned + make_interval(secs => :hold)
    FROM due
    WHERE s.id = due.id
    RETURNING s.id, s.shop_order_id, s.key, s.supplier_order_id, s.status,
              s.tracking_code, s.tracking_url, s.carrier_name,
              EXISTS (
                  SELECT 1 FROM supplier_status_history h
                  WHERE h.supplier_order_id = s.id AND h.new_status = s.status
              ) AS announced,
              due.planned
    """
)


def lease(engine: Engine, *, limit: int, lookahead: float, hold: float) -> list[Lease]:
    """Lease up to `limit` open rows due within `lookahead` seconds, in due order.

    Their next_poll_at moves to (due time + hold) in the same statement, so no
    other replica takes them before this one has polled them and written back.
    """
    with engine.begin() as conn:
        rows = conn.execute(LEASE_SQL, {"limit": limit, "lookahead": lookahead, "hold": hold}).all()
    leases = [Lease(*row) for row in rows]
    leases.sort(key=lambda l: (l.planned, l.id))
    return leases


WRITE_BACK_SQL = text(
    """
    UPDATE supplier_orders s SET
        status = CASE WHEN v.recorded THEN v.status ELSE s.status END,
        substatus = CASE WHEN v.recorded THEN v.substatus ELSE s.substatus END,
        tracking_code = CASE WHEN v.recorded THEN COALESCE(v.tracking_code, s.tracking_code) ELSE s.tracking_code END,
        tracking_url = CASE WHEN v.recorded THEN COALESCE(v.tracking_url, s.tracking_url) ELSE s.tracking_url END,
        carrier_name = CASE WHEN v.recorded THEN COALESCE(v.carrier_name, s.carrier_name) ELSE s.carrier_name END,
        final = s.final OR (v.recorded AND v.final),
        supplier_order_id = CASE
            WHEN (s.supplier_order_id IS NULL OR s.supplier_order_id = 0)
                 AND v.supplier_order_id IS NOT NULL
                 AND NOT EXISTS (SELECT 1 FROM supplier_orders o WHERE o.supplier_order_id = v.supplier_order_id)
            THEN v.supplier_order_id ELSE s.supplier_order_id END,
        last_polled_at = COALESCE(v.polled_at, s.last_polled_at),
        next_poll_at = v.next_poll_at,
        last_error = CASE
            WHEN v.error IS NOT NULL THEN v.error
            WHEN v.clear_error AND s.last_error LIKE :prefix THEN NULL
            ELSE s.last_error END,
        updated_at = CASE WHEN v.recorded THEN now() ELSE s.updated_at END
    FROM unnest(
        CAST(:id AS bigint[]), CAST(:next_poll_at AS timestamptz[]), CAST(:polled_at AS timestamptz[]),
        CAST(:recorded AS boolean[]), CAST(:status AS integer[]), CAST(:substatus AS integer[]),
        CAST(:tracking_code AS text[]), CAST(:tracking_url AS text[]), CAST(:carrier_name AS text[]),
        CAST(:final AS boolean[]), CAST(:supplier_order_id AS bigint[]), CAST(:error AS text[]),
        CAST(:clear_error AS boolean[])
    ) AS v(id, next_poll_at, polled_at, recorded, status, substatus, tracking_code, tracking_url,
           carrier_name, final, supplier_order_id, error, clear_error)
    WHERE s.id = v.id
    """
)
_RECORD_FIELDS = (
    "id", "next_poll_at", "polled_at", "recorded", "status", "substatus", "tracking_code", "tracking_url",
    "carrier_name", "final", "supplier_order_id", "error", "clear_error",
)


_SUPPLIER_TEXTS = ("tracking_code", "tracking_url", "carrier_name")


def _storable_or_none(value: str | None) -> str | None:
    return None if value is None else storable(value)


def write_back(engine: Engine, records: list[PollRecord]) -> None:
    """One statement for the whole batch, however many rows it has."""
    if not records:
        return
    params: dict[str, object] = {name: [getattr(r, name) for r in records] for name in _RECORD_FIELDS}
    # The supplier's texts: one NUL among them would make PostgreSQL refuse the whole
    # batch, and the changes already announced would be announced again every cycle.
    for name in _SUPPLIER_TEXTS:
        params[name] = [_storable_or_none(getattr(r, name)) for r in records]
    params["error"] = [None if r.error is None else stored_reason(r.error) for r in records]
    params["prefix"] = POLL_ERROR_PREFIX.replace("%", r"\%").replace("_", r"\_") + "%"
    with engine.begin() as conn:
        conn.execute(WRITE_BACK_SQL, params)


# --- the applier -------------------------------------------------------------------------


@dataclass(frozen=True)
class SupplierOrderRow:
    id: int
    shop_order_id: int
    supplier_order_id: int | None


@dataclass(frozen=True)
class HistoryRow:
    id: int
    shop_state: str  # new -> noting -> done
    tracking_code: str | None
    tracking_url: str | None
    carrier_name: str | None


def find_supplier_order(conn: Connection, key: str) -> SupplierOrderRow | None:
    row = conn.execute(
        text("SELECT id, shop_order_id, supplier_order_id FROM supplier_orders WHERE key = :key"), {"key": key}
    ).one_or_none()
    return SupplierOrderRow(*row) if row else None


def ensure_history(
    conn: Connection,
    supplier_order: int,
    *,
    old_status: int | None,
    new_status: int,
    tracking_code: str | None,
    tracking_url: str | None,
    carrier_name: str | None,
    observed_at: datetime,
) -> HistoryRow:
    """The history row of this status, created on first sight; tracking fills in if it was missing."""
    return HistoryRow(
        *conn.execute(
            text(
                """
                INSERT INTO supplier_status_history AS h
                    (supplier_order_id, old_status, new_status, tracking_code, tracking_url, carrier_name,
                     observed_at, shop_state)
                VALUES (:so, :old, :new, :code, :url, :carrier, :observed, 'new')
                ON CONFLICT ON CONSTRAINT uq_status_history_once DO UPDATE SET
                    tracking_code = COALESCE(h.tracking_code, EXCLUDED.tracking_code),
                    tracking_url = COALESCE(h.tracking_url, EXCLUDED.tracking_url),
                    carrier_name = COALESCE(h.carrier_name, EXCLUDED.carrier_name)
                RETURNING id, shop_state, tracking_code, tracking_url, carrier_name
                """
            ),
            {
                "so": supplier_order,
                "old": old_status,
                "new": new_status,
                "code": _storable_or_none(tracking_code),
                "url": _storable_or_none(tracking_url),
                "carrier": _storable_or_none(carrier_name),
                "observed": observed_at,
            },
        ).one()
    )


def history_state(conn: Connection, history_id: int) -> str:
    return conn.execute(
        text("SELECT shop_state FROM supplier_status_history WHERE id = :id"), {"id": history_id}
    ).scalar_one()


def set_history_state(conn: Connection, history_id: int, state: str) -> None:
    conn.execute(
        text(
            "UPDATE supplier_status_history SET shop_state = :state,"
            " applied_at = CASE WHEN :state = 'done' THEN now() ELSE applied_at END WHERE id = :id"
        ),
        {"state": state, "id": history_id},
    )


def note_shop_failure(conn: Connection, supplier_order: int, reason: str) -> None:
    conn.execute(
        text("UPDATE supplier_orders SET last_error = :reason WHERE id = :id"),
        {"reason": stored_reason(reason)[:1000], "id": supplier_order},
    )


# Class id of the applier's advisory locks (two-key form), so they meet no other lock.
APPLY_LOCK_CLASS = 0x53484F50  # "SHOP"


def try_lock_history(conn: Connection, history_id: int) -> bool:
    """A session lock on one history row: one worker at a time talks to the shop about it."""
    return bool(
        conn.execute(
            text("SELECT pg_try_advisory_lock(:cls, :key)"),
            {"cls": APPLY_LOCK_CLASS, "key": history_id % 2_147_483_647},
        ).scalar_one()
    )


def unlock_history(conn: Connection, history_id: int) -> None:
    conn.execute(
        text("SELECT pg_advisory_unlock(:cls, :key)"),
        {"cls": APPLY_LOCK_CLASS, "key": history_id % 2_147_483_647},
    )


# --- the shop catch-up ---------------------------------------------------------------------


def get_watermark(engine: Engine) -> datetime | None:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT value FROM sync_state WHERE name = :name"), {"name": CATCHUP_WATERMARK}
        ).scalar_one_or_none()
        conn.rollback()
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def set_watermark(engine: Engine, moment: datetime) -> None:
    """Only ever moves forward, whichever replica writes."""
    value = moment.astimezone(timezone.utc).isoformat()
    with engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO sync_state (name, value, updated_at) VALUES (:name, :value, now())
                ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                WHERE CAST(sync_state.value AS timestamptz) < CAST(EXCLUDED.value AS timestamptz)
                """
            ),
            {"name": CATCHUP_WATERMARK, "value": value},
        )


def request_rewind(conn: Connection, moment: datetime) -> None:
    """Ask the next catch-up pass to read again from `moment`; the earliest request wins.

    Kept apart from the watermark, which only moves forward, so a pass running
    meanwhile cannot undo the request by saving its own progress."""
    conn.execute(
        text(
            """
            INSERT INTO sync_state (name, value, updated_at) VALUES (:name, :value, now())
            ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
            WHERE CAST(EXCLUDED.value AS timestamptz) < CAST(sync_state.value AS timestamptz)
            """
        ),
        {"name": CATCHUP_REWIND, "value": moment.astimezone(timezone.utc).isoformat()},
    )


def get_rewind(engine: Engine) -> tuple[datetime, str] | None:
    """The requested rewind moment and its stored text (to clear exactly that request)."""
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT value FROM sync_state WHERE name = :name"), {"name": CATCHUP_REWIND}
        ).scalar_one_or_none()
        conn.rollback()
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)), value


def clear_rewind(engine: Engine, value: str) -> None:
    """Done with the request read as `value`; a newer (earlier) one asked meanwhile stays."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM sync_state WHERE name = :name AND value = :value"),
                     {"name": CATCHUP_REWIND, "value": value})


def go_live_moment(engine: Engine, first_start: datetime) -> datetime:
    """The recorded go-live moment; the first caller records `first_start`, and it never changes."""
    value = first_start.astimezone(timezone.utc).isoformat()
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO sync_state (name, value, updated_at) VALUES (:name, :value, now())"
                " ON CONFLICT (name) DO NOTHING"
            ),
            {"name": GO_LIVE, "value": value},
        )
        stored = conn.execute(text("SELECT value FROM sync_state WHERE name = :name"), {"name": GO_LIVE}).scalar_one()
    moment = datetime.fromisoformat(stored)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
