"""Liveness, readiness, the endpoint server and the metric helpers of shared/observability."""
from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, Counter

from shared.failures import retry
from shared.failures.errors import TransientError
from shared.messaging.messages import UnparseableMessage
from shared.observability import metrics
from shared.observability.health import CachedCheck, Health
from shared.observability.server import serve
from tests.support import free_port


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_loop_that_stops_beating_fails_liveness_by_name():
    clock = Clock()
    health = Health(clock)
    health.register_loop("consumer", max_silence=30)
    health.register_loop("poll", max_silence=120)
    assert health.liveness().ok
    clock.now += 60
    health.beat("poll")
    status = health.liveness()
    assert not status.ok
    assert status.problems == ("loop consumer silent for 60 s (allowed 30 s)",)
    health.beat("consumer")
    assert health.liveness().ok
    clock.now += 200
    health.retire_loop("consumer")
    health.retire_loop("poll")
    assert health.liveness().ok


def test_readiness_lists_every_problem_with_its_reason_and_recovers():
    health = Health()
    assert health.readiness().ok
    health.set_problem("broker", "connection refused")
    reason: list[str | None] = ["password authentication failed"]
    health.add_check("database", lambda: reason[0])
    status = health.readiness()
    assert not status.ok
    assert status.problems == ("broker: connection refused", "database: password authentication failed")
    assert status.text() == "broker: connection refused\ndatabase: password authentication failed\n"
    health.clear_problem("broker")
    reason[0] = None
    assert health.readiness().ok and health.readiness().text() == "ok\n"


def test_a_check_that_raises_is_a_problem_not_a_crash():
    health = Health()
    health.add_check("database", lambda: 1 / 0)
    assert health.readiness().problems == ("database: check failed: ZeroDivisionError('division by zero')",)


def test_cached_check_probes_at_most_once_per_ttl():
    clock = Clock()
    calls = []

    def probe() -> None:
        calls.append(clock.now)
        if len(calls) == 2:
            raise ConnectionError("could not connect to server\nmore detail")

    check = CachedCheck(probe, ttl=5, clock=clock)
    assert check() is None and check() is None
    assert len(calls) == 1
    clock.now += 5
    assert check() == "ConnectionError: could not connect to server"
    clock.now += 5
    assert check() is None
    assert len(calls) == 3


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_server_answers_the_three_endpoints_from_its_health_and_registry():
    health = Health()
    registry = CollectorRegistry()
    Counter("rewix_example", "An example.", registry=registry).inc(3)
    server = serve(free_port(), host="127.0.0.1", health=health, registry=registry)
    assert server is not None
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert fetch(base + "/healthz") == (200, "ok\n")
        assert fetch(base + "/readyz") == (200, "ok\n")
        health.set_problem("supplier account", "the supplier refuses the account (HTTP 401)")
        assert fetch(base + "/readyz") == (503, "supplier account: the supplier refuses the account (HTTP 401)\n")
        health.register_loop("consumer", max_silence=-1)
        status, body = fetch(base + "/healthz")
        assert status == 503 and body.startswith("loop consumer silent")
        status, body = fetch(base + "/metrics")
        assert status == 200 and "rewix_example_total 3.0" in body
        assert fetch(base + "/nothing")[0] == 404
    finally:
        server.close()


def test_port_zero_serves_nothing():
    assert serve(0) is None


def sample(name: str, **labels: str) -> float:
    value = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_record_outcome_counts_handled_retried_dead_lettered_and_gave_up():
    queue = "rewix.unit_test_queue"
    metrics.start_consuming(queue)
    assert sample("rewix_messages_dead_lettered_total", queue=queue, reason="gave_up") == 0
    server_error = retry.outcome_of(TransientError("HTTP 503", status=503))
    metrics.record_outcome(queue, retry.Ack())
    metrics.record_outcome(queue, server_error)
    metrics.record_outcome(queue, server_error, dead=True)
    metrics.record_outcome(queue, retry.outcome_of(UnparseableMessage("x"), "unparseable message"), dead=True)
    assert sample("rewix_messages_handled_total", queue=queue) == 1
    assert sample("rewix_messages_retried_total", queue=queue, reason="server_error") == 1
    assert sample("rewix_messages_dead_lettered_total", queue=queue, reason="gave_up") == 1
    assert sample("rewix_messages_dead_lettered_total", queue=queue, reason="unparseable") == 1


def test_endpoint_templates_carry_no_ids():
    assert metrics.supplier_endpoint("GET", "/restful/ghost/clientorders/clientkey/WC-10%2F2") == \
        "GET /ghost/clientorders/clientkey/{key}"
    assert metrics.supplier_endpoint("GET", "/restful/ghost/clientorders/serverkey/12345") == \
        "GET /ghost/clientorders/serverkey/{id}"
    assert metrics.supplier_endpoint("POST", "/restful/ghost/orders/0/dropshipping") == \
        "POST /ghost/orders/{id}/dropshipping"
    assert metrics.supplier_endpoint("GET", "/restful/ghost/orders/dropshipping/locked/") == \
        "GET /ghost/orders/dropshipping/locked"
    assert metrics.shop_endpoint("POST", "/orders/77/notes") == "POST /orders/{id}/notes"
    assert metrics.shop_endpoint("GET", "/orders") == "GET /orders"


def test_supplier_account_state_follows_the_answers():
    from shared.observability.health import HEALTH

    metrics.record_supplier_call("GET /ghost/x", 401, 0.01)
    assert sample("rewix_supplier_account_refused") == 1
    assert any(p.startswith("supplier account: the supplier refuses the account (HTTP 401")
               for p in HEALTH.readiness().problems)
    metrics.record_supplier_call("GET /ghost/x", 503, 0.01)  # a 5xx says nothing about the account
    assert sample("rewix_supplier_account_refused") == 1
    metrics.record_supplier_call("GET /ghost/x", 404, 0.01)
    assert sample("rewix_supplier_account_refused") == 0
    assert not any(p.startswith("supplier account") for p in HEALTH.readiness().problems)


def test_shop_account_state_follows_the_answers_to_the_keys():
    from shared.observability.health import HEALTH

    metrics.record_shop_call("GET /orders", 401, 0.01)
    assert sample("rewix_shop_account_refused") == 1
    assert any(p.startswith("shop account: the shop refuses the REST keys (HTTP 401")
               for p in HEALTH.readiness().problems)
    metrics.record_shop_call("GET /orders", 502, 0.01)  # a 5xx says nothing of the keys
    metrics.record_shop_call("GET /wp-json/", 200, 0.01, authenticated=False)  # nor does a public route
    assert sample("rewix_shop_account_refused") == 1
    metrics.record_shop_call("GET /orders", 200, 0.01)
    assert sample("rewix_shop_account_refused") == 0
    assert not any(p.startswith("shop account") for p in HEALTH.readiness().problems)


def test_shop_check_enable_success_failure():
    check = metrics.ShopCheck("unit_test_check")
    check.enable(300)
    assert sample("rewix_shop_check_interval_seconds", check="unit_test_check") == 300
    first = sample("rewix_shop_check_last_success_timestamp_seconds", check="unit_test_check")
    assert first > 0
    check.failed()
    check.succeeded()
    assert sample("rewix_shop_check_runs_total", check="unit_test_check", result="failure") == 1
    assert sample("rewix_shop_check_runs_total", check="unit_test_check", result="success") == 1
    assert sample("rewix_shop_check_last_success_timestamp_seconds", check="unit_test_check") >= first


def test_status_change_lag_is_measured_from_the_poll_that_saw_it():
    from datetime import datetime, timedelta, timezone

    before = sample("rewix_status_change_lag_seconds_count")
    applied = sample("rewix_status_changes_applied_total", status="Dispatched")
    over_a_minute = sample("rewix_status_change_lag_seconds_bucket", le="60.0")
    metrics.status_change_applied("Dispatched", datetime.now(timezone.utc) - timedelta(seconds=90))
    metrics.status_change_applied("Dispatched", (datetime.now(timezone.utc) - timedelta(seconds=2)).replace(tzinfo=None))
    assert sample("rewix_status_changes_applied_total", status="Dispatched") == applied + 2
    assert sample("rewix_status_change_lag_seconds_count") == before + 2
    # only the 2-second one is within a minute
    assert sample("rewix_status_change_lag_seconds_bucket", le="60.0") == over_a_minute + 1


def test_a_worker_serves_on_this_machine_only_unless_told_and_each_on_its_own_port(monkeypatch):
    from shared.observability import worker
    from shared.settings import Settings

    bound = []
    monkeypatch.setattr(worker, "serve", lambda port, host: bound.append((host, port)))
    monkeypatch.setattr(worker, "_backlog_registered", True)  # no collector of a store here
    worker.start_endpoints(Settings(), "supplier_sync")
    worker.start_endpoints(Settings(), "status_poller")
    worker.start_endpoints(Settings(metrics_host="0.0.0.0", metrics_port=9200), "status_poller")
    assert bound == [("127.0.0.1", 9100), ("127.0.0.1", 9101), ("0.0.0.0", 9200)]
    assert serve.__kwdefaults__["host"] == "127.0.0.1"
