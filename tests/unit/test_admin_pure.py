"""The pure parts of the operator tooling: tables, dead-letter records, view helpers."""
from __future__ import annotations

from datetime import datetime, timezone

from shared.failures import retry
from shared.messaging import topology
from services.admin import dead_letters, text_tables as tables, views

WHEN = datetime(2026, 11, 26, 9, 0, 5, tzinfo=timezone.utc)


def test_table_aligns_columns_and_shows_missing_values_as_dashes() -> None:
    out = tables.render(["ID", "Name", "When"], [[1, "Zoë", None], [100, "a b\nc", WHEN]], numeric=[0])
    assert out.splitlines() == [
        " ID  Name   When",
        "---  -----  --------------------",
        "  1  Zoë    -",
        "100  a b c  2026-11-26 09:00:05Z",
    ]


def test_a_table_prints_nothing_a_terminal_would_obey() -> None:
    # An order number or a SKU as a customer or a plugin may have typed it: an escape sequence
    # that clears the screen, a bell, a NUL, a right-to-left override, a lone surrogate.
    out = tables.render(["Number", "SKU"], [["Zo\x1b[2Jë\x07\x00\u202e#1001", "JKT\ud800-M\tred"]])
    assert out.splitlines()[2] == "Zo[2Jë#1001  JKT-M red"
    out.encode("utf-8")  # a UTF-8 terminal can print every character of it


def test_table_cuts_long_cells_but_the_free_last_one() -> None:
    long = "x" * 100
    cut = tables.render(["A", "B"], [[long, long]], max_cell=10)
    assert cut.splitlines()[2] == "xxxxxxxxx…  xxxxxxxxx…"
    free = tables.render(["A", "B"], [[long, long]], max_cell=10, free_last=True)
    assert free.splitlines()[2].endswith(long)


def test_table_counts_wide_characters_twice() -> None:
    out = tables.render(["A", "B"], [["日本", "x"], ["ab", "y"]])
    # Both second cells start at display column 6, though at different character offsets.
    assert [tables.width(line[: line.index(c)]) for line, c in zip(out.splitlines()[2:], "xy")] == [6, 6]


def test_iso_time_and_most_urgent() -> None:
    assert tables.iso_time("2026-11-26T10:00:05+01:00") == "2026-11-26 09:00:05Z"
    assert tables.iso_time("garbage") == "garbage" and tables.iso_time(None) == "-"
    assert views.most_urgent(["locked", "short", "pending"]) == "short"
    assert views.most_urgent(["sent", "dead_lettered"]) == "dead_lettered"
    assert views.most_urgent([]) is None


def test_admin_order_url() -> None:
    assert views.admin_order_url("https://shop.example.com/", 42) == "https://shop.example.com/wp-admin/post.php?post=42&action=edit"
    assert views.admin_order_url(None, 42) is None
    assert views.wc_id(2101, 2104) == "2104 (product 2101)" and views.wc_id(3307, 0) == "3307"


def test_record_of_a_message_our_consumer_dead_lettered() -> None:
    route = retry.route_failure(retry.RetryLater("HTTP 503", 503), {retry.ATTEMPTS: 5, retry.FIRST_FAILED_AT: "first"},
                                topology.ORDER_LINES, [1, 2, 4, 8, 16], now=WHEN)
    values = dead_letters.record_values("rewix.order_lines.dead", "m-1", route.headers, b'{"order_id": 77}')
    assert values["queue"] == "rewix.order_lines"
    assert values["order_id"] == 77 and values["message_id"] == "m-1"
    assert values["reason"] == "gave up after 6 attempts: HTTP 503"
    assert values["attempts"] == 6
    assert values["first_failed_at"] == "first" and values["last_failed_at"] == WHEN.isoformat()
    assert values["body"] == '{"order_id": 77}'


def test_record_of_a_message_rabbitmq_dead_lettered_itself() -> None:
    headers = {
        "x-death": [
            {"count": 1, "reason": "delivery_limit", "queue": "rewix.status_changes", "time": WHEN,
             "exchange": "rewix.events", "routing-keys": ["status_change"]},
            {"count": 2, "reason": "expired", "queue": "rewix.status_changes.wait.1s", "time": WHEN},
        ],
        "x-first-death-reason": "expired",
        retry.ATTEMPTS: 2,
    }
    values = dead_letters.record_values("rewix.status_changes.dead", "m-2", headers, b'{"shop_order_id": 9}')
    assert values["reason"] == "delivery limit exceeded"
    assert values["queue"] == "rewix.status_changes"
    assert values["order_id"] == 9
    assert values["last_failed_at"] == WHEN.isoformat()
    assert values["attempts"] == 2 + topology.DELIVERY_LIMIT
    assert values["headers"]["x-death"][0]["time"] == WHEN.isoformat()  # stored as JSON


def test_a_wait_queue_expiry_is_not_a_broker_dead_letter() -> None:
    headers = {"x-death": [{"reason": "expired", "queue": "rewix.order_lines.wait.4s", "time": WHEN}],
               retry.REASON: "permanent", retry.QUEUE: "rewix.order_lines", retry.LAST_FAILED_AT: "t"}
    values = dead_letters.record_values("rewix.order_lines.dead", "m", headers, b"[]")
    assert values["reason"] == "permanent" and values["last_failed_at"] == "t" and values["order_id"] is None


def test_order_id_only_from_a_sane_integer() -> None:
    assert dead_letters.order_id_in_message(b'{"order_id": true}') is None
    assert dead_letters.order_id_in_message(b'{"order_id": "12"}') is None
    assert dead_letters.order_id_in_message(b'{"order_id": 12, "shop_order_id": 13}') == 12
    assert dead_letters.order_id_in_message(b"\xff") is None
    assert dead_letters.order_id_in_message(b"{") is None


def test_messages_without_id_or_timestamps_still_have_a_stable_key() -> None:
    a = dead_letters.record_values("rewix.order_lines.dead", None, None, b"poison")
    b = dead_letters.record_values("rewix.order_lines.dead", None, None, b"poison")
    assert a["message_id"] == b["message_id"] and a["message_id"].startswith("sha256:")
    assert a["last_failed_at"] == "" and a["reason"] == "no reason recorded"


def test_one_set_of_columns_serves_the_terminal_and_the_page() -> None:
    from services.admin import columns

    row = {"order_id": 12, "number": "A-12", "status": "pending", "deleted": True, "url": "https://shop/12",
           "lines": [{"stock_id": 100001, "quantity": 2}, {"stock_id": 100002, "quantity": 1}],
           "sync_status": "locked", "rewix_sync_status": "reserved", "supplier_order_id": None,
           "supplier_status_name": None,
           "cancelled_in_shop": False, "tracking_code": "1Z", "carrier_name": "UPS", "tracking_url": None,
           "last_synced_at": WHEN, "last_error": None}
    cells = columns.ORDERS.cells(row)
    assert cells[0] == [columns.Piece("#A-12 (12)", "https://shop/12")]  # the page links it
    assert [columns.plain(c) for c in cells] == [
        "#A-12 (12)", "pending (deleted)", "100001 x2, 100002 x1", "reserved", None, "not sent", "1Z (UPS)",
        "2026-11-26 09:00:05Z", None]
    assert columns.as_text(columns.ORDERS, []) == "no shop order with supplier lines yet"
    assert columns.as_text(columns.DEAD_LETTERS, []) == "no dead letters"
    letters = [{"id": 1, "replayed_at": None}, {"id": 2, "replayed_at": "2026-11-26T09:00:05+00:00"}]
    assert columns.waiting(letters) == [letters[0]]
