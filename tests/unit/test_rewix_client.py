"""RewixClient against the simulated supplier, served in-process on an ephemeral port."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from shared.clients.rewix import DropshippingOrder, IncrementalWindowExpired, Recipient, RewixClient
from shared.clients.rewix.client import path_segment
from shared.failures.errors import AccountRefused, AmbiguousLookup, PermanentError, TransientError
from simulators.rewix import SimulatorControl, SimulatorServer, start_in_thread
from tests.support import free_port

KEY, PASSWORD = "test-key", "s3cret-pw"
A, B, C = 501, 502, 503  # catalog models: 5, 10 and 0 units
UNKNOWN = 999999


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    server = start_in_thread(api_key=KEY, password=PASSWORD)
    yield server
    server.stop()


@pytest.fixture
def control(sim: SimulatorServer) -> Iterator[SimulatorControl]:
    ctl = SimulatorControl(sim.url)
    ctl.reset()
    ctl.seed_catalog(
        [
            {"stock_id": A, "product_id": 50, "code": "P50-S", "barcode": "8000000000501", "availability": 5},
            {"stock_id": B, "product_id": 50, "code": "P50-M", "barcode": "8000000000502", "availability": 10},
            {"stock_id": C, "product_id": 51, "code": "P51", "barcode": "", "availability": 0},
        ]
    )
    yield ctl
    ctl.close()


@pytest.fixture
def client(sim: SimulatorServer, control: SimulatorControl) -> Iterator[RewixClient]:
    c = RewixClient(sim.url, KEY, PASSWORD, timeout=2.0)
    yield c
    c.close()


def _order(key: str, items: dict[int, int]) -> DropshippingOrder:
    return DropshippingOrder(
        key=key,
        date=datetime.now(timezone.utc),
        recipient=Recipient(name="Zoë Müller", address_1="Via Roma 1", postcode="20121", city="Milano", countrycode="IT"),
        items=items,
    )


# --- growing order ---------------------------------------------------------------

def test_lock_set_unlock_semantics_and_capping(client: RewixClient) -> None:
    assert client.get_growing_order().order_id == 0  # nothing reserved yet

    growing = client.modify_growing_order(lock={A: 3})
    assert growing.order_id > 0
    assert (growing.models[A].locked, growing.models[A].available) == (3, 2)

    growing = client.modify_growing_order(lock={A: 4, B: 2})  # 7 wanted, 5 in stock: capped
    assert growing.locked(A) == 5 and growing.models[A].available == 0
    assert growing.locked(B) == 2 and growing.models[B].available == 8

    assert client.modify_growing_order(unlock={A: 2}).locked(A) == 3
    assert client.modify_growing_order(unlock={A: 10}).locked(A) == 0  # not below zero
    assert client.modify_growing_order(set={A: 4}).locked(A) == 4
    assert client.modify_growing_order(set={A: 9}).locked(A) == 5

    growing = client.modify_growing_order(set={A: 0})
    assert growing.models[A].locked == 0  # named in the request, still reported
    again = client.get_growing_order()
    assert A not in again.models and again.locked(B) == 2
    assert again.order_id == growing.order_id


def test_short_models_show_up_short_or_missing(client: RewixClient) -> None:
    growing = client.modify_growing_order(lock={C: 1, UNKNOWN: 1, B: 1})
    assert growing.models[C].locked == 0  # out of stock: 200 with less than asked
    assert UNKNOWN not in growing.models  # unknown to the catalog: left out
    assert growing.locked(B) == 1


# --- orders ----------------------------------------------------------------------------

def test_dropshipping_order_consumes_locks_and_is_found(client: RewixClient, control: SimulatorControl) -> None:
    client.modify_growing_order(lock={A: 2, B: 1})
    key = "WC/1001 #ä"  # must be URL-quoted in the lookup path
    client.send_dropshipping_order(_order(key, {A: 3}))

    growing = client.get_growing_order()
    assert A not in growing.models and growing.locked(B) == 1  # the two locked units went into the order
    assert control.availability()[A] == 2

    found = client.find_order_by_key(key)
    assert found is not None
    assert (found.key, found.status, found.status_name) == (key, 5, "Booked")
    assert found.order_id >= 4711 and found.last_update and found.last_update.endswith("+0000")
    assert client.get_order(found.order_id) == found

    control.set_status(found.order_id, 3, tracking_code="1Z9", tracking_url="https://t.example/1Z9", carrier_name="UPS")
    shipped = client.get_order(found.order_id)
    assert shipped is not None and shipped.is_final
    assert (shipped.tracking_code, shipped.tracking_url, shipped.carrier_name) == ("1Z9", "https://t.example/1Z9", "UPS")


def test_duplicate_key_is_permanent(client: RewixClient, control: SimulatorControl) -> None:
    client.send_dropshipping_order(_order("K-1", {B: 1}))
    with pytest.raises(PermanentError) as info:
        client.send_dropshipping_order(_order("K-1", {B: 1}))
    assert info.value.status == 400 and "already exists" in info.value.reason
    assert control.state()["duplicates"] == 1


def test_not_enough_stock_creates_nothing(client: RewixClient, control: SimulatorControl) -> None:
    with pytest.raises(PermanentError) as info:
        client.send_dropshipping_order(_order("K-2", {B: 1, A: 6}))
    assert info.value.status == 412 and f"NOAVAILABILITY stock_id {A}" in info.value.body
    assert client.find_order_by_key("K-2") is None
    assert control.availability()[B] == 10


def test_unknown_orders_are_none(client: RewixClient, control: SimulatorControl) -> None:
    assert client.find_order_by_key("nope") is None
    assert client.get_order(123) is None
    control.faults(fail_next={"status": 500, "count": 1})
    # Older servers answer 500 for an unknown key, but so does a failing one: not "none".
    with pytest.raises(AmbiguousLookup):
        client.find_order_by_key("nope")


# --- failures ---------------------------------------------------------------------------

def test_wrong_password_refuses_the_account_and_secret_stays_out(sim: SimulatorServer, control: SimulatorControl) -> None:
    bad = RewixClient(sim.url, KEY, "wrong-password-123")
    with pytest.raises(AccountRefused) as info:
        bad.get_growing_order()
    assert info.value.status == 401
    # Neither retried nor dead-lettered as a message's fault: its own type.
    assert not isinstance(info.value, (PermanentError, TransientError))
    assert "wrong-password-123" not in f"{info.value} {info.value.body} {bad!r}"


@pytest.mark.parametrize("status", [401, 403])
def test_account_switched_to_refused_and_back(client: RewixClient, control: SimulatorControl, status: int) -> None:
    control.refuse_account(status)
    with pytest.raises(AccountRefused) as info:
        client.modify_growing_order(set={A: 1})
    assert info.value.status == status
    # The operator is told which settings to look at, by the names they are set under.
    assert "REWIX_API_KEY" in str(info.value) and "REWIX_API_PASSWORD" in str(info.value)
    assert control.state()["growing_order"]["models"] == {}  # refused: nothing done
    control.accept_account()
    assert client.modify_growing_order(set={A: 1}).locked(A) == 1


def test_account_refused_for_some_seconds_only(client: RewixClient, control: SimulatorControl) -> None:
    control.refuse_account(401, seconds=0.3)
    with pytest.raises(AccountRefused):
        client.get_growing_order()
    time.sleep(0.4)
    assert client.get_growing_order().order_id == 0


def test_maintenance_page_is_transient_with_an_excerpt(client: RewixClient, control: SimulatorControl) -> None:
    control.faults(maintenance={"seconds": 30})
    with pytest.raises(TransientError) as info:
        client.modify_growing_order(set={A: 1})
    assert info.value.status == 200
    assert "maintenance" in info.value.reason and "does not parse" in info.value.reason
    control.faults(maintenance=None)
    assert client.modify_growing_order(set={A: 1}).locked(A) == 1


def test_a_5xx_for_one_model_fails_only_the_calls_naming_it(client: RewixClient, control: SimulatorControl) -> None:
    control.faults(failing_stock_ids={"stock_ids": [B], "status": 503})
    with pytest.raises(TransientError) as info:
        client.modify_growing_order(set={A: 1, B: 1})
    assert info.value.status == 503 and f"stock_id {B}" in info.value.reason
    assert client.modify_growing_order(set={A: 1}).locked(A) == 1


def test_lookup_500_is_ambiguous_never_absent(client: RewixClient, control: SimulatorControl) -> None:
    client.send_dropshipping_order(_order("K-500", {B: 1}))
    control.faults(clientkey_errors=["K-500", "K-NEVER"])
    for key in ("K-500", "K-NEVER"):  # the one that exists and one that does not: the same answer
        with pytest.raises(AmbiguousLookup) as info:
            client.find_order_by_key(key)
        assert info.value.status == 500 and isinstance(info.value, TransientError)
    control.faults(clientkey_errors=None)
    assert client.find_order_by_key("K-500") is not None
    assert client.find_order_by_key("K-NEVER") is None  # 404: absent


def test_lookup_answer_about_another_key_is_not_our_order(sim: SimulatorServer, control: SimulatorControl) -> None:
    RewixClient(sim.url, KEY, PASSWORD).send_dropshipping_order(_order("OTHER", {B: 1}))
    session = requests.Session()
    # A server that answers the lookup of "MINE" with the order of "OTHER".
    session.hooks["response"].append(
        lambda resp, **_: resp if "clientkey/MINE" not in resp.url else _replace_with(resp, sim.url + "/restful/ghost/clientorders/clientkey/OTHER")
    )
    assert RewixClient(sim.url, KEY, PASSWORD, session=session).find_order_by_key("MINE") is None


def _replace_with(resp: requests.Response, url: str) -> requests.Response:
    resp._content = requests.get(url, auth=(KEY, PASSWORD), timeout=2).content
    resp.status_code = 200
    return resp


@pytest.mark.parametrize("key", [".", "..", "a/b", "...", "50%", "x?y#z", "Zoë"])
def test_any_key_is_one_path_segment_and_reads_back(client: RewixClient, control: SimulatorControl, key: str) -> None:
    client.send_dropshipping_order(_order(key, {B: 1}))
    found = client.find_order_by_key(key)
    assert found is not None and found.key == key
    assert control.state()["recent_requests"][-1]["summary"] == {"key": key}
    assert "." not in path_segment(key) and "/" not in path_segment(key)


def test_connection_dropped_after_the_order_was_created(client: RewixClient, control: SimulatorControl) -> None:
    control.faults(drop_after_create=1)
    with pytest.raises(TransientError) as info:
        client.send_dropshipping_order(_order("DROP-1", {B: 1}))
    assert info.value.outcome_unknown
    assert [o["key"] for o in control.state()["orders"]] == ["DROP-1"]  # created all the same
    assert client.find_order_by_key("DROP-1") is not None


def test_poisoned_stock_is_permanent(client: RewixClient, control: SimulatorControl) -> None:
    control.faults(poisoned_stock_ids=[B])
    with pytest.raises(PermanentError) as info:
        client.modify_growing_order(lock={B: 1})
    assert info.value.status == 400 and f"stock_id {B} is not orderable" in info.value.reason


def test_status_window_is_transient(client: RewixClient, control: SimulatorControl) -> None:
    control.faults(status_window={"status": 503, "seconds": 30})
    with pytest.raises(TransientError) as info:
        client.get_growing_order()
    assert info.value.status == 503
    control.clear_faults()
    assert client.get_growing_order().order_id == 0


def test_rate_limit_is_transient_with_retry_after(client: RewixClient, control: SimulatorControl) -> None:
    control.faults(rate_limit={"per_second": 1, "retry_after": 2})
    client.get_growing_order()
    with pytest.raises(TransientError) as info:
        client.get_growing_order()
    assert info.value.status == 429 and info.value.retry_after == 2.0
    assert control.state()["rejected_429"] == 1


def test_latency_beyond_timeout_leaves_the_outcome_unknown(sim: SimulatorServer, control: SimulatorControl) -> None:
    impatient = RewixClient(sim.url, KEY, PASSWORD, timeout=0.2)
    control.faults(latency_ms=600)
    with pytest.raises(TransientError) as post:
        impatient.modify_growing_order(lock={B: 1})
    assert post.value.outcome_unknown
    with pytest.raises(TransientError) as get:
        impatient.get_growing_order()
    assert not get.value.outcome_unknown  # a GET changes nothing
    control.clear_faults()
    time.sleep(0.5)  # the slow lock still lands: exactly why the outcome is unknown
    assert control.state()["growing_order"]["models"] == {str(B): 1}


def test_dropped_connection_is_transient(client: RewixClient, control: SimulatorControl) -> None:
    control.faults(drop_next=1)
    with pytest.raises(TransientError) as info:
        client.modify_growing_order(lock={B: 1})
    assert info.value.outcome_unknown
    assert client.get_growing_order().locked(B) == 1  # the next call works on a fresh connection


def test_refused_connection_is_transient_and_known_not_sent() -> None:
    port = free_port()  # nobody listens there
    with pytest.raises(TransientError) as info:
        RewixClient(f"http://127.0.0.1:{port}", KEY, PASSWORD, timeout=1).modify_growing_order(lock={A: 1})
    assert not info.value.outcome_unknown


def test_unparsable_200_is_transient(sim: SimulatorServer, control: SimulatorControl) -> None:
    # A 200 from something that is not the supplier (a captive portal, a proxy page).
    session = requests.Session()
    session.hooks["response"].append(lambda resp, **_: setattr(resp, "_content", b"<html>") or resp)
    with pytest.raises(TransientError) as info:
        RewixClient(sim.url, KEY, PASSWORD, session=session).get_growing_order()
    assert info.value.status == 200


# --- strict server validation ----------------------------------------------------------

def _raw(sim: SimulatorServer, path: str, body: str, method: str = "POST", content_type: str = "application/xml") -> requests.Response:
    return requests.request(
        method, sim.url + path, data=body.encode(), auth=(KEY, PASSWORD), headers={"Content-Type": content_type}, timeout=2
    )


SOLD = "/restful/ghost/orders/sold"
SHIP = "/restful/ghost/orders/0/dropshipping"
GOOD_ORDER = """<root><order_list><order><key>{key}</key><date>{date}</date>
<recipient_details><recipient>Ann</recipient>{address}{phone}</recipient_details>
<item_list>{items}</item_list></order></order_list></root>"""
ADDRESS = "<address><street_name>Main St 1</street_name><zip>10001</zip><city>NYC</city><countrycode>US</countrycode></address>"
PHONE = "<phone><prefix/><number/></phone>"
ITEM = f"<item><stock_id>{B}</stock_id><quantity>1</quantity></item>"


def _ship_body(**overrides: str) -> str:
    fields = {"key": "R-1", "date": "2024/03/05 14:07:00 -0800", "address": ADDRESS, "phone": PHONE, "items": ITEM}
    fields.update(overrides)
    return GOOD_ORDER.format(**fields)


@pytest.mark.parametrize(
    "body",
    [
        "<root><operation type='lock'><model stock_id='1' quantity='1'/></operation>",  # malformed
        "<rooot><operation type='lock'/></rooot>",
        "<root><operations type='lock'/></root>",
        "<root><operation type='ensure'/></root>",
        "<root><operation type='lock'><item stock_id='1' quantity='1'/></operation></root>",
        "<root><operation type='lock'><model stock_id='1'/></operation></root>",
        "<root><operation type='lock'><model stock_id='1' quantity='-1'/></operation></root>",
        "<root><operation type='lock'><model stock_id='x' quantity='1'/></operation></root>",
    ],
)
def test_strict_lock_validation(sim: SimulatorServer, control: SimulatorControl, body: str) -> None:
    resp = _raw(sim, SOLD, body)
    assert resp.status_code == 400 and resp.text


@pytest.mark.parametrize(
    "overrides",
    [
        {"key": ""},
        {"date": "2024-03-05 14:07:00"},
        {"date": "2024/03/05 14:07:00"},
        {"date": "2024/13/05 14:07:00 +0000"},
        {"phone": ""},
        {"address": ""},
        {"address": ADDRESS.replace("<zip>10001</zip>", "<zip/>")},
        {"address": ADDRESS.replace("US", "USA")},
        {"items": ""},
        {"items": f"<item><stock_id>{B}</stock_id><quantity>0</quantity></item>"},
    ],
)
def test_strict_order_validation(sim: SimulatorServer, control: SimulatorControl, overrides: dict[str, str]) -> None:
    resp = _raw(sim, SHIP, _ship_body(**overrides))
    assert resp.status_code == 400 and resp.text
    assert control.state()["orders"] == []


def test_raw_protocol_edges(sim: SimulatorServer, control: SimulatorControl) -> None:
    extra = _ship_body(items=ITEM + "<ignored>x</ignored>").replace("<key>", "<ref_id>7</ref_id><key>")
    assert _raw(sim, SHIP, extra).status_code == 200  # unknown elements are ignored
    assert _raw(sim, SOLD + "/", "<root/>").status_code == 200
    assert _raw(sim, SOLD, "", method="GET").status_code == 405
    assert _raw(sim, "/restful/ghost/orders/dropshipping/locked", "", method="GET").status_code == 404
    assert _raw(sim, SOLD, "<root/>", content_type="application/json").status_code == 415
    assert requests.post(sim.url + SOLD, data="<root/>", timeout=2).status_code == 401
    assert requests.get(sim.url + "/restful/export/api/products.json", auth=(KEY, PASSWORD), timeout=2).status_code == 400
    calls = control.state()["calls"]
    assert calls["dropshipping"] == 1 and calls["lock"] == 4


# --- catalog ------------------------------------------------------------------------------

def test_catalog_full_and_incremental(client: RewixClient) -> None:
    catalog = client.download_catalog()
    assert catalog.last_update
    by_id = {m.stock_id: m for m in catalog.models}
    assert set(by_id) == {A, B, C}
    assert (by_id[A].product_id, by_id[A].code, by_id[A].barcode, by_id[A].availability) == (50, "P50-S", "8000000000501", 5)

    client.send_dropshipping_order(_order("K-cat", {B: 2}))
    changes = client.download_catalog(since=catalog.last_update)
    assert {m.stock_id: m.availability for m in changes.models} == {A: 5, B: 8}  # only product 50 changed


def test_catalog_since_too_old_is_412(client: RewixClient) -> None:
    old = (datetime.now(timezone.utc) - timedelta(hours=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    with pytest.raises(IncrementalWindowExpired) as info:
        client.download_catalog(since=old)
    assert isinstance(info.value, PermanentError) and info.value.status == 412


# --- the process ------------------------------------------------------------------------------

def test_process_prints_its_port_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.rewix", "--port", "0", "--seed-catalog", "2"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ")
        catalog = RewixClient(url, "demo-key", "demo-password").download_catalog()
        assert len(catalog.models) == 6
        proc.terminate()
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
