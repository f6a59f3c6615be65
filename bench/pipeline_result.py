"""One pipeline run's specification and figures, and how the per-line figures are worked out."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.burst import LINES_PER_ORDER, Burst
from bench.common import percentile
from bench.webhook_load import Answer

FEEDS = ("webhooks", "queue")  # through ingest, or straight onto the work queue


@dataclass
class RunSpec:
    worker: str
    latency_ms: int
    burst: Burst
    senders: int
    log_dir: Path
    timeout: float
    feed: str = "webhooks"
    replicas: int = 1  # worker processes consuming the work queue together


@dataclass
class RunResult:
    worker: str
    latency_ms: int
    orders: int
    lines: int
    feed: str = "webhooks"
    exact: bool = False
    seconds: float | None = None
    lines_per_s: float | None = None
    supplier_calls: dict[str, int] = field(default_factory=dict)
    calls_per_line: float | None = None
    latency_p50: float | None = None
    latency_p95: float | None = None
    latency_p99: float | None = None
    locked_lines: int = 0
    webhooks_seconds: float | None = None  # queue feed: until the last message was confirmed
    webhook_p50: float | None = None
    webhook_p99: float | None = None
    webhook_failures: int = 0
    convergences: int | None = None  # supplier_sync: transactions that locked lines
    lines_per_convergence_mean: float | None = None
    lines_per_convergence_max: int | None = None
    convergence_interval: float | None = None  # mean time from one such transaction to the next
    models_per_call_mean: float | None = None
    memory: dict[str, dict[str, float | int]] = field(default_factory=dict)  # service -> peak RSS/PSS
    replicas: int = 1
    # Each process's CPU use from the first message fed to the first exact look, in CPUs
    # (each worker replica, PostgreSQL, RabbitMQ, the supplier simulator, the benchmark itself).
    cpu: dict[str, float] = field(default_factory=dict)
    # The run database's client backends over the same time, mean number in each state (bench/db_waits.py).
    db_backends: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    log_dir: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def new_result(spec: RunSpec) -> RunResult:
    return RunResult(spec.worker, spec.latency_ms, len(spec.burst.webhooks), spec.burst.line_count,
                     feed=spec.feed, log_dir=str(spec.log_dir), replicas=spec.replicas)


def note_answers(result: RunResult, answers: list[Answer], started: float) -> None:
    ok = [a for a in answers if a.status == 200 and a.messages == LINES_PER_ORDER]
    result.webhook_failures = len(answers) - len(ok)
    if result.webhook_failures:
        statuses = Counter(a.status for a in answers if a not in ok)
        result.problems.append(
            f"{result.webhook_failures} webhooks not answered 200 with {LINES_PER_ORDER} messages: {dict(statuses)}")
    result.webhooks_seconds = max(a.answered_at for a in answers) - started
    durations = [a.answered_at - a.sent_at for a in answers]
    result.webhook_p50 = percentile(durations, 50)
    result.webhook_p99 = percentile(durations, 99)


@dataclass
class Stamp:
    at: float
    tx: int | None


def lock_stamps(engine: Any, lock_log: Path, worker: str) -> dict[tuple[int, int], Stamp]:
    if worker == "naive":
        stamps = {}
        if lock_log.exists():
            for raw in lock_log.read_text().splitlines():
                order_id, line_id, at = raw.split()
                stamps.setdefault((int(order_id), int(line_id)), Stamp(float(at), None))
        return stamps
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT order_id, line_id, EXTRACT(EPOCH FROM locked_at)::float8, tx FROM bench_line_locked")
        )
        return {(o, l): Stamp(at, tx) for o, l, at, tx in rows}


def note_latencies(result: RunResult, burst: Burst, answers: list[Answer], stamps: dict[tuple[int, int], Stamp]) -> None:
    answered = {a.order_id: a.answered_at for a in answers if a.status == 200}
    latencies = []
    for order_id, line_ids in burst.lines.items():
        for line_id in line_ids:
            stamp = stamps.get((order_id, line_id))
            if stamp is not None and order_id in answered:
                latencies.append(stamp.at - answered[order_id])
    result.locked_lines = len(latencies)
    if result.locked_lines != result.lines:
        result.problems.append(f"lock time known for {result.locked_lines} of {result.lines} lines")
    result.latency_p50 = percentile(latencies, 50)
    result.latency_p95 = percentile(latencies, 95)
    result.latency_p99 = percentile(latencies, 99)
    per_tx = Counter(s.tx for s in stamps.values() if s.tx is not None)
    if per_tx:
        result.convergences = len(per_tx)
        result.lines_per_convergence_mean = sum(per_tx.values()) / len(per_tx)
        result.lines_per_convergence_max = max(per_tx.values())
        first_at: dict[int, float] = {}
        for stamp in stamps.values():
            if stamp.tx is not None:
                first_at[stamp.tx] = min(stamp.at, first_at.get(stamp.tx, stamp.at))
        times = sorted(first_at.values())
        if len(times) > 1:
            result.convergence_interval = (times[-1] - times[0]) / (len(times) - 1)
