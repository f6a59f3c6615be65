"""Watching a pipeline run settle: the supplier simulator's growing order against the burst's totals."""
from __future__ import annotations

import threading
import time

from bench.common import queue_info, wait_until
from bench.pipeline_result import RunResult
from shared.messaging import topology
from simulators.rewix.control import SimulatorControl

WATCH_INTERVAL = 0.05
SETTLE_SECONDS = 0.5


class ExactWatcher(threading.Thread):
    """Looks at the simulator's growing order every WATCH_INTERVAL; notes the first exact look."""

    def __init__(self, simulator_url: str, expected: dict[int, int]) -> None:
        super().__init__(name="exact-watcher", daemon=True)
        self.control = SimulatorControl(simulator_url)
        self.expected = expected
        self.exact_at: float | None = None
        self.exact = threading.Event()
        self.halt = threading.Event()
        self.last_locks: dict[int, int] = {}
        self.error: str | None = None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                before = time.time()
                locks = growing_order(self.control)
                after = time.time()
                self.last_locks = locks
                if locks == self.expected and self.exact_at is None:
                    self.exact_at = (before + after) / 2
                    self.exact.set()
                self.halt.wait(WATCH_INTERVAL)
        except Exception as exc:  # reported with the run's figures
            self.error = repr(exc)[:300]
            self.exact.set()
        finally:
            self.control.close()


def growing_order(control: SimulatorControl) -> dict[int, int]:
    models = control.state()["growing_order"]["models"]
    return {int(k): int(v) for k, v in models.items() if int(v) > 0}


def consumers(amqp_url: str) -> int:
    info = queue_info(amqp_url, topology.ORDER_LINES.name)
    return info[1] if info else 0


def settle(result: RunResult, amqp_url: str, control: SimulatorControl, expected: dict[int, int],
           retry_delays: list[int]) -> None:
    """Once the work queue is empty, nothing waits for a retry and the locks still hold exactly."""
    queue = topology.ORDER_LINES
    try:
        wait_until(lambda: (queue_info(amqp_url, queue.name) or (1, 0))[0] == 0, timeout=30, interval=0.1,
                   what="the work queue to empty")
    except TimeoutError as exc:
        result.problems.append(str(exc))
    time.sleep(SETTLE_SECONDS)
    for name in [queue.dead, *(queue.wait(d) for d in retry_delays)]:
        info = queue_info(amqp_url, name)
        if info and info[0]:
            result.problems.append(f"{info[0]} messages in {name}")
    final = growing_order(control)
    result.exact = final == expected
    if not result.exact:
        result.problems.append(f"final growing order not exact: {difference(expected, final)}")


def difference(expected: dict[int, int], actual: dict[int, int]) -> str:
    wrong = {s: (expected.get(s, 0), actual.get(s, 0))
             for s in set(expected) | set(actual) if expected.get(s, 0) != actual.get(s, 0)}
    if not wrong:
        return "none"
    over = sum(max(0, a - e) for e, a in wrong.values())
    under = sum(max(0, e - a) for e, a in wrong.values())
    sample = ", ".join(f"{s}: {a}/{e}" for s, (e, a) in sorted(wrong.items())[:5])
    return f"{len(wrong)} models differ ({over} units over, {under} short; held/needed {sample})"


def models_per_call(control: SimulatorControl) -> float | None:
    """Mean models named per growing-order call, over the simulator's recent requests."""
    sizes = [len(r["summary"] or []) for r in control.state()["recent_requests"] if r["path"].endswith("/orders/sold")]
    return sum(sizes) / len(sizes) if sizes else None
