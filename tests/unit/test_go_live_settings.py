"""The go-live and customer-tracking settings, and how a backfill plan reads."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from shared.settings import Settings
from services.admin.backfill import LOCK_AND_HOLD, OrderPlan


def test_shop_go_live_at_is_a_utc_moment_and_unset_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_GO_LIVE_AT", raising=False)
    assert Settings().shop_go_live_at is None
    for text in ("2026-12-01T09:00:00Z", "2026-12-01T10:00:00+01:00", "2026-12-01T09:00:00"):
        monkeypatch.setenv("SHOP_GO_LIVE_AT", text)
        assert Settings().shop_go_live_at == datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    monkeypatch.setenv("SHOP_GO_LIVE_AT", "next monday")
    with pytest.raises(ValidationError):
        Settings()


def test_the_customer_tracking_note_is_on_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_CUSTOMER_TRACKING_NOTE", raising=False)
    assert Settings().shop_customer_tracking_note is True
    monkeypatch.setenv("SHOP_CUSTOMER_TRACKING_NOTE", "false")
    assert Settings().shop_customer_tracking_note is False


def test_a_plan_line_names_the_order_its_lines_and_what_happens() -> None:
    plan = OrderPlan(1002, "WC-1002", "processing", [(100001, 2), (100003, 1)], LOCK_AND_HOLD, hold=True)
    assert plan.describe() == (
        "#WC-1002 (id 1002) processing: 100001 x2, 100003 x1 -> lock, hold: paid already, not sent without --send-paid"
    )
    assert OrderPlan(7, "7", "processing", [], "nothing: no supplier line").describe() == (
        "#7 processing: no supplier line -> nothing: no supplier line"
    )


def test_ingest_port_may_name_the_address_compose_publishes_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/reverse-proxy.md puts INGEST_PORT=127.0.0.1:8080 in .env; every container reads that .env."""
    monkeypatch.setenv("INGEST_PORT", "127.0.0.1:8080")
    assert Settings().ingest_port == 8080
    monkeypatch.setenv("INGEST_PORT", "9090")
    assert Settings().ingest_port == 9090
    monkeypatch.setenv("INGEST_PORT", "127.0.0.1:http")
    with pytest.raises(ValidationError):
        Settings()
