"""The one failure policy (shared/failures/retry.py): every error type's fate and kind, and the places
that must ask it instead of sorting failures again by status code or text.

The table is the policy. The call-site tests give each caller a policy that
says something else than the status and the text suggest, so a caller that
sorts failures itself (a 429 here, a 5xx there, "timeout" in the reason)
fails them; the source scan catches the usual ways of doing so.
"""
from __future__ import annotations

import ast
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from shared.failures import account_pause, retry
from shared.failures.errors import (
    SHOP, SUPPLIER, AccountRefused, AmbiguousLookup, ConnectionFailed, PermanentError, TimedOut, TransientError,
)
from shared.messaging.messages import UnparseableMessage
from shared.observability import metrics
from services.status_poller.budget import RequestBudget
from services.status_poller.store import Lease
from services.status_poller.workers import SupplierAsker
from services.supplier_sync import plan

ROOT = Path(__file__).resolve().parents[2]

# error -> (fate, kind, about the item named)
POLICY = [
    ("429", TransientError("HTTP 429", status=429, retry_after=7.0), retry.RetryLater, retry.RATE_LIMITED, False),
    ("5xx", TransientError("HTTP 503", status=503), retry.RetryLater, retry.SERVER_ERROR, True),
    ("500 on a key lookup", AmbiguousLookup("HTTP 500", status=500), retry.RetryLater, retry.SERVER_ERROR, True),
    ("timeout", TimedOut("read timed out", outcome_unknown=True), retry.RetryLater, retry.TIMEOUT, False),
    ("connection", ConnectionFailed("connection refused"), retry.RetryLater, retry.CONNECTION, False),
    ("a 2xx that does not parse", TransientError("not JSON", status=200), retry.RetryLater, retry.OTHER, False),
    ("400", PermanentError("HTTP 400", status=400), retry.DeadLetter, retry.REJECTED, True),
    ("404", PermanentError("HTTP 404", status=404), retry.DeadLetter, retry.REJECTED, True),
    ("412", PermanentError("HTTP 412", status=412), retry.DeadLetter, retry.REJECTED, True),
    ("permanent, no status", PermanentError("invalid URL"), retry.DeadLetter, retry.OTHER, True),
    ("supplier 401", AccountRefused("HTTP 401", status=401), retry.Paused, retry.ACCOUNT_REFUSED, False),
    ("supplier 403", AccountRefused("HTTP 403", status=403, account=SUPPLIER), retry.Paused, retry.ACCOUNT_REFUSED,
     False),
    ("shop 401", AccountRefused("HTTP 401", status=401, account=SHOP), retry.Paused, retry.ACCOUNT_REFUSED, False),
    ("shop 403", AccountRefused("HTTP 403", status=403, account=SHOP), retry.Paused, retry.ACCOUNT_REFUSED, False),
    ("unparseable message", UnparseableMessage("body is not JSON"), retry.DeadLetter, retry.UNPARSEABLE, True),
    ("database down", OperationalError("SELECT 1", {}, Exception("connection refused")), retry.RetryLater,
     retry.DATABASE, False),
    ("a bug", KeyError("oops"), retry.RetryLater, retry.HANDLER_ERROR, False),
]
IDS = [case[0] for case in POLICY]


@pytest.mark.parametrize(("name", "exc", "fate", "kind", "about_item"), POLICY, ids=IDS)
def test_the_policy_decides_fate_and_kind_from_the_typed_error(name, exc, fate, kind, about_item) -> None:
    outcome = retry.outcome_of(exc, "context")
    assert type(outcome) is fate
    assert outcome.kind == kind and kind in metrics.REASON_CLASSES
    assert outcome.reason.startswith("context: ")
    assert retry.about_the_item(outcome) is about_item
    if isinstance(exc, AccountRefused):
        assert outcome.account == exc.account and outcome.status == exc.status
    if isinstance(exc, TransientError):
        assert outcome.status == exc.status and outcome.retry_after == exc.retry_after


def test_every_kind_but_those_the_system_makes_itself_comes_from_an_error() -> None:
    made = {retry.outcome_of(exc).kind for _, exc, *_ in POLICY}
    # short: the convergence says it (no error); gave_up: the consumer, when the schedule ran out.
    assert made | {retry.SHORT, retry.GAVE_UP} == set(retry.KINDS)


def test_a_refused_account_a_worker_does_not_wholly_need_waits_on_the_schedule() -> None:
    outcome = retry.outcome_of(AccountRefused("HTTP 401", status=401, account=SHOP), "shop", pause=False)
    assert isinstance(outcome, retry.RetryLater) and outcome.kind == retry.ACCOUNT_REFUSED


def test_the_database_refusing_the_data_is_a_rejection() -> None:
    from sqlalchemy.exc import DataError

    class Orig(Exception):
        pgcode = "22001"  # string data right truncation: a value longer than its column
        diag = None

    refusal = retry.database_refusal(DataError("INSERT", {}, Orig()))
    assert isinstance(refusal, retry.DeadLetter) and refusal.kind == retry.REJECTED


def test_restating_a_failure_keeps_its_kind() -> None:
    later = retry.outcome_of(TransientError("HTTP 503", status=503, retry_after=4.0))
    assert later.saying("supplier failed on stock_id 1") == retry.RetryLater(
        "supplier failed on stock_id 1", 503, 4.0, kind=retry.SERVER_ERROR)
    dead = retry.outcome_of(PermanentError("HTTP 400", status=400))
    assert dead.saying("refused").kind == retry.REJECTED


# --- the call sites ask the policy ----------------------------------------------------------------


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_metrics_count_the_kind_the_policy_gave_never_the_status_or_the_text() -> None:
    queue = "rewix.policy_test_queue"
    metrics.start_consuming(queue)
    # Status and text say "server error", "timeout", "connection": the kind says short, and wins.
    misleading = retry.RetryLater("HTTP 503: timeout, connection cut short", 503, kind=retry.SHORT)
    metrics.record_outcome(queue, misleading)
    assert sample("rewix_messages_retried_total", queue=queue, reason="short") == 1
    assert sample("rewix_messages_retried_total", queue=queue, reason="server_error") == 0
    metrics.record_outcome(queue, retry.DeadLetter("HTTP 401 unparseable", 401, kind=retry.REJECTED), dead=True)
    assert sample("rewix_messages_dead_lettered_total", queue=queue, reason="rejected") == 1
    metrics.record_outcome(queue, misleading, dead=True)  # a RetryLater dead-lettered: its schedule ran out
    assert sample("rewix_messages_dead_lettered_total", queue=queue, reason="gave_up") == 1
    metrics.record_outcome(queue, retry.Paused("HTTP 401", 401))  # back to its queue: counted nowhere
    assert sample("rewix_messages_handled_total", queue=queue) == 0


class StubPolicy:
    """A policy that contradicts the status: what the callers do must follow it, not the status."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, outcome: retry.Outcome, about_item: bool = False) -> None:
        self.seen: list[BaseException] = []

        def outcome_of(exc: BaseException, context: str | None = None, **_: object) -> retry.Outcome:
            self.seen.append(exc)
            return outcome

        monkeypatch.setattr(retry, "outcome_of", outcome_of)
        monkeypatch.setattr(retry, "about_the_item", lambda _outcome: about_item)


def test_the_plan_asks_the_policy_whether_a_failure_is_about_one_model(monkeypatch) -> None:
    # A 429 the policy calls a model's 5xx: split off as the model's failure.
    model = retry.RetryLater("HTTP 503", 503, kind=retry.SERVER_ERROR)
    StubPolicy(monkeypatch, model, about_item=True)
    assert plan.model_failure(TransientError("HTTP 429", status=429)) is model
    # A 500 the policy calls the server's: not the model's.
    StubPolicy(monkeypatch, retry.RetryLater("HTTP 500", 500, kind=retry.SERVER_ERROR), about_item=False)
    assert plan.model_failure(TransientError("HTTP 500", status=500)) is None


class FailingSupplier:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def get_order(self, order_id: int):
        raise self.exc

    find_order_by_key = get_order


def lease() -> Lease:
    return Lease(1, 10, "WC-10", 99, 1, None, None, None, True, datetime.now(timezone.utc) - timedelta(seconds=1))


def poll(exc: Exception) -> tuple[SupplierAsker, RequestBudget, object]:
    budget = RequestBudget(1000)
    asker = SupplierAsker(FailingSupplier(exc), budget, lookahead=5.0, concurrency=1)  # type: ignore[arg-type]
    return asker, budget, asker.poll_one(lease(), threading.Event(), timedelta())


def test_the_poll_worker_throttles_when_the_policy_says_rate_limited_whatever_the_status(monkeypatch) -> None:
    StubPolicy(monkeypatch, retry.RetryLater("slow down", 503, 9.0, kind=retry.RATE_LIMITED))
    asker, budget, observation = poll(TransientError("HTTP 503", status=503))
    assert observation.throttled and observation.retry_after == 9.0 and budget.throttled_count == 1
    assert observation.polled_at is None and asker.refused is None


def test_the_poll_worker_pauses_when_the_policy_says_paused_whatever_the_status(monkeypatch) -> None:
    paused = retry.Paused("refused", 500)
    StubPolicy(monkeypatch, paused)
    asker, _budget, observation = poll(TransientError("HTTP 500", status=500))
    assert asker.refused is paused
    assert observation.polled_at is None and observation.error is None  # handed back, not the order's fault


def test_the_poll_worker_records_a_429_as_an_error_when_the_policy_says_so(monkeypatch) -> None:
    StubPolicy(monkeypatch, retry.DeadLetter("refused", 429, kind=retry.REJECTED))
    asker, budget, observation = poll(TransientError("HTTP 429", status=429, retry_after=3))
    assert not observation.throttled and budget.throttled_count == 0
    assert observation.error == "HTTP 429" and observation.polled_at is not None  # its observation as before


@pytest.mark.parametrize(("name", "exc", "fate", "kind", "about_item"), POLICY, ids=IDS)
def test_the_poll_worker_follows_the_real_policy(name, exc, fate, kind, about_item) -> None:
    asker, budget, observation = poll(exc)
    if fate is retry.Paused:
        assert asker.refused is not None and observation.polled_at is None
    elif kind == retry.RATE_LIMITED:
        assert observation.throttled and budget.throttled_count == 1
    else:
        assert observation.error and observation.requested and not observation.throttled
        expected = exc.reason if isinstance(exc, (TransientError, PermanentError)) else f"unexpected error: {exc!r}"
        assert observation.error == expected


# --- no caller sorts failures again -----------------------------------------------------------------

CALLERS = [
    ROOT / "shared/observability/metrics.py",
    ROOT / "services/supplier_sync/plan.py",
    ROOT / "services/status_poller/workers.py",
    ROOT / "services/status_poller/applier.py",
    *sorted((ROOT / "services/status_poller/shop_watch").glob("*.py")),
]
# The statuses whose meaning is the policy's: refused credentials, rate limits, server errors.
POLICY_STATUSES = {401, 403, 429}
POLICY_NAMES = {"refuses_credentials", "CREDENTIALS_REFUSED", "reason_class", "passed_authentication"}


def _numbers(node: ast.AST) -> set[int]:
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and type(n.value) is int}


def _sorting(tree: ast.AST, metrics_module: bool) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            numbers = _numbers(node)
            if numbers & POLICY_STATUSES or any(500 <= n < 600 for n in numbers):
                found.append(f"line {node.lineno}: compares a status the policy reads")
        if isinstance(node, ast.Name) and node.id in POLICY_NAMES and not metrics_module:
            found.append(f"line {node.lineno}: {node.id}")
        if isinstance(node, ast.Attribute) and node.attr in POLICY_NAMES:
            found.append(f"line {node.lineno}: .{node.attr}")
        if metrics_module and isinstance(node, ast.Attribute) and node.attr in {"reason", "status"}:
            found.append(f"line {node.lineno}: reads .{node.attr} of an outcome")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "lower":
            found.append(f"line {node.lineno}: reads the text")
    return found


@pytest.mark.parametrize("path", CALLERS, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_caller_sorts_failures_by_status_or_text(path: Path) -> None:
    found = _sorting(ast.parse(path.read_text()), metrics_module=path.name == "metrics.py")
    assert not found, f"{path.relative_to(ROOT)} sorts failures itself; ask shared/failures/retry.py: {found}"


def test_the_scan_catches_the_sorting_it_forbids() -> None:
    caught = _sorting(ast.parse(
        "if exc.status == 429: pass\n"
        "if outcome.status is not None and 500 <= outcome.status < 600: pass\n"
        "if exc.refuses_credentials: pass\n"
        "if 'timeout' in outcome.reason.lower(): pass\n"
    ), metrics_module=False)
    assert len(caught) == 4
    assert _sorting(ast.parse("label = outcome.reason"), metrics_module=True)


# --- one pause per account and process ---------------------------------------------------------------

class RecordingLog:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __getattr__(self, level: str):
        def record(event: str, **fields: object) -> None:
            with self.lock:
                self.lines.append((level, event))
        return record

    def count(self, level: str, words: str) -> int:
        with self.lock:
            return sum(1 for lv, event in self.lines if lv == level and words in event)


def test_workers_refused_by_one_account_share_one_probe_and_one_error(monkeypatch) -> None:
    from tests.support import wait_until

    recorded = RecordingLog()
    monkeypatch.setattr(account_pause, "log", recorded)
    monkeypatch.setattr(account_pause, "_PAUSES", {})  # a process of its own: no error logged a moment ago
    accept = threading.Event()
    probers: set[str] = set()

    def probe() -> None:
        probers.add(threading.current_thread().name)
        if not accept.is_set():
            raise AccountRefused("HTTP 401", status=401, account=SHOP)

    stop = threading.Event()
    results: dict[str, bool] = {}

    def worker(name: str) -> None:
        results[name] = account_pause.wait_until_accepted(
            probe, stop, worker=name, reason="HTTP 401", account=SHOP, first_delay=0.01, max_delay=0.05)

    threads = [threading.Thread(target=worker, args=(f"loop-{i}",), name=f"loop-{i}") for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        wait_until(lambda: recorded.count("info", "waiting for the probe under way") == 3, timeout=10,
                   what="three workers waiting on the fourth's probe")
        wait_until(lambda: len(probers) == 1 and recorded.count("error", "shop refuses the REST keys") == 1,
                   timeout=10, what="one worker probing")
        accept.set()
        for thread in threads:
            thread.join(timeout=10)
    finally:
        stop.set()
    assert results == {f"loop-{i}": True for i in range(4)}
    assert len(probers) == 1  # one probe at a time for the whole process
    assert recorded.count("error", "refuses the REST keys") == 1
