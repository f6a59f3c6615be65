"""status_poller's shop loops on refused REST keys: they wait for the shop, then go round at once; any other
failure backs off as before. The shop's account pause itself is tests/unit/test_failure_policy.py's."""
from __future__ import annotations

import threading

import pytest

from shared.failures import account_pause
from shared.failures.errors import SHOP, SUPPLIER, AccountRefused, TransientError
from services.status_poller.shop_watch import problem_notes, sync_meta
from services.status_poller.shop_watch.check_loop import run_check_loop
from services.status_poller.shop_watch.key_pause import wait_if_keys_refused


class FakeCheck:
    name = "unit_check"

    def __init__(self) -> None:
        self.failures: list[str] = []

    def started(self) -> None:
        pass

    def failed(self, error: str) -> None:
        self.failures.append(error)


class FakeShop:
    def probe_keys(self) -> None:
        pass


@pytest.fixture
def pauses(monkeypatch) -> list[dict]:
    """The account pause, answered at once: each wait is recorded."""
    waited: list[dict] = []

    def wait_until_accepted(probe, stop, **fields) -> bool:
        waited.append({"probe": probe, **fields})
        return True

    monkeypatch.setattr(account_pause, "wait_until_accepted", wait_until_accepted)
    return waited


def passes_failing_with(*failures: Exception, stop: threading.Event):
    """A pass that fails with each of `failures` in turn, then succeeds and stops the loop."""
    left = list(failures)

    def run_pass() -> float:
        if left:
            raise left.pop(0)
        stop.set()
        return 60.0

    return run_pass


def test_a_check_refused_the_keys_waits_for_the_shop_and_runs_again_at_once(pauses) -> None:
    stop, check, shop, slept = threading.Event(), FakeCheck(), FakeShop(), []
    run_check_loop(stop, check, shop, loop="unit.check", label="unit check", max_silence=600, retry_first=2.0,
                   retry_cap=60.0, run_pass=passes_failing_with(AccountRefused("401", status=401, account=SHOP),
                                                                stop=stop),
                   sleep=slept.append)
    assert slept == [60.0]  # no backoff: the pass after the wait ran at once
    assert len(pauses) == 1 and pauses[0]["account"] == SHOP and pauses[0]["probe"] == shop.probe_keys
    assert len(check.failures) == 1  # the check says why it did not succeed


def test_any_other_failure_backs_off_without_waiting_for_the_shop(pauses) -> None:
    stop, check, slept = threading.Event(), FakeCheck(), []
    # The shop down, and a supplier's refusal (no business of a shop loop): both back off.
    run_check_loop(stop, check, FakeShop(), loop="unit.check", label="unit check", max_silence=600, retry_first=2.0,
                   retry_cap=60.0, run_pass=passes_failing_with(TransientError("HTTP 503", status=503),
                                                                AccountRefused("401", status=401, account=SUPPLIER),
                                                                stop=stop),
                   sleep=slept.append)
    assert len(slept) == 3 and slept[-1] == 60.0 and all(0 < s <= 60.0 for s in slept[:2])  # backoff (jittered)
    assert pauses == [] and len(check.failures) == 2


def test_only_the_shops_refusal_is_waited_out(pauses) -> None:
    stop = threading.Event()
    assert wait_if_keys_refused(AccountRefused("401", status=401, account=SHOP), FakeShop(), stop, worker="w")
    assert not wait_if_keys_refused(AccountRefused("401", status=401, account=SUPPLIER), FakeShop(), stop, worker="w")
    assert not wait_if_keys_refused(TransientError("HTTP 500", status=500), FakeShop(), stop, worker="w")
    assert [p["account"] for p in pauses] == [SHOP]


@pytest.mark.parametrize("loop_class", [problem_notes.ProblemNotes, sync_meta.SyncMetaWriter])
def test_the_writing_loops_wait_for_the_shop_and_go_round_at_once(pauses, monkeypatch, loop_class) -> None:
    stop = threading.Event()
    loop = loop_class.__new__(loop_class)  # no database: only the loop's round is under test
    loop.shop, loop.interval = FakeShop(), 2.0
    rounds: list[int] = []

    def run_once(*_args):
        rounds.append(1)
        if len(rounds) == 1:
            raise AccountRefused("401", status=401, account=SHOP)
        stop.set()
        return sync_meta.MetaPass()

    monkeypatch.setattr(loop, "run_once", run_once)
    waits: list[float] = []
    monkeypatch.setattr(stop, "wait", lambda seconds=None: waits.append(seconds) or stop.is_set())
    loop.run(stop)
    assert len(rounds) == 2 and len(pauses) == 1 and pauses[0]["account"] == SHOP
    assert all(w in (0, 0.0, 2.0) for w in waits)  # no backoff: at once after the wait
