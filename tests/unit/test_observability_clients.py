"""The supplier and shop clients count every call they make (shared/observability/metrics.py)."""
from __future__ import annotations

from datetime import datetime

import pytest

from shared.clients.rewix import RewixClient
from shared.clients.shop.client import WooCommerceClient
from shared.failures.errors import AccountRefused, PermanentError, TransientError
from shared.observability import metrics
from shared.observability.health import HEALTH
from simulators.rewix import SimulatorControl
from simulators.rewix import start_in_thread as start_rewix
from simulators.shop import start_in_thread as start_shop


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_supplier_calls_by_endpoint_and_status_and_the_refused_account():
    server = start_rewix(api_key="k", password="p")
    good = RewixClient(server.url, "k", "p", timeout=3)
    refused = RewixClient(server.url, "k", "wrong", timeout=3)
    endpoint = "GET /ghost/orders/dropshipping/locked"
    try:
        ok_before = sample("rewix_supplier_calls_total", endpoint=endpoint, status="200")
        count_before = sample("rewix_supplier_call_duration_seconds_count", endpoint=endpoint)
        good.get_growing_order()
        assert sample("rewix_supplier_calls_total", endpoint=endpoint, status="200") == ok_before + 1
        assert sample("rewix_supplier_call_duration_seconds_count", endpoint=endpoint) == count_before + 1
        assert sample("rewix_supplier_account_refused") == 0

        with pytest.raises(AccountRefused):
            refused.get_growing_order()
        assert sample("rewix_supplier_calls_total", endpoint=endpoint, status="401") >= 1
        assert sample("rewix_supplier_account_refused") == 1
        assert any(p.startswith("supplier account:") for p in HEALTH.readiness().problems)

        good.get_growing_order()  # accepted again: the account is no longer refused
        assert sample("rewix_supplier_account_refused") == 0
        assert not any(p.startswith("supplier account:") for p in HEALTH.readiness().problems)

        SimulatorControl(server.url).faults(status_window={"status": 503, "seconds": 30})
        with pytest.raises(TransientError):
            good.get_growing_order()
        assert sample("rewix_supplier_calls_total", endpoint=endpoint, status="503") >= 1
    finally:
        good.close()
        refused.close()
        server.stop()
    dead = RewixClient(server.url, "k", "p", timeout=1)
    before = sample("rewix_supplier_calls_total", endpoint=endpoint, status="connection_error")
    with pytest.raises(TransientError):
        dead.get_growing_order()
    assert sample("rewix_supplier_calls_total", endpoint=endpoint, status="connection_error") == before + 1


def test_shop_calls_by_endpoint_and_status():
    shop = start_shop(consumer_key="ck_metrics", consumer_secret="cs_metrics")
    client = WooCommerceClient(shop.url, "ck_metrics", "cs_metrics", timeout=3)
    try:
        before = sample("rewix_shop_calls_total", endpoint="GET /orders/{id}", status="404")
        with pytest.raises(PermanentError):
            client.get_order(987654)
        assert sample("rewix_shop_calls_total", endpoint="GET /orders/{id}", status="404") == before + 1
        listed = sample("rewix_shop_calls_total", endpoint="GET /orders", status="200")
        list(client.iter_orders_modified_since(datetime(2026, 1, 1)))
        assert sample("rewix_shop_calls_total", endpoint="GET /orders", status="200") == listed + 1
        assert sample("rewix_shop_call_duration_seconds_count", endpoint="GET /orders") >= 1
    finally:
        shop.stop()
