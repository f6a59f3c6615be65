"""Liveness from heartbeats, readiness from connections.

Each long-running loop of a worker beats (`Health.beat(name)`) every time it
goes round; a loop that has not beaten within its allowed silence is stuck,
and `/healthz` says which one. Readiness is a set of named problems: a
connection that is lost or refused sets its problem with the reason (`broker`,
`database`, `supplier account`), and clears it once it works again; checks
evaluated on request (a database ping) can be added too. `/readyz` is 200 only
when there is no problem.

One Health per process (`HEALTH`): the consumer, the loops and the clients
reach it without being handed it, so wiring a worker needs no new arguments.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

# A loop that registers no silence of its own is stuck after this long.
DEFAULT_MAX_SILENCE = 120.0


@dataclass(frozen=True)
class Status:
    ok: bool
    problems: tuple[str, ...]

    def text(self) -> str:
        return "ok\n" if self.ok else "".join(f"{p}\n" for p in self.problems)


class Health:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._beats: dict[str, float] = {}
        self._silence: dict[str, float] = {}
        self._problems: dict[str, str] = {}
        self._checks: dict[str, Callable[[], str | None]] = {}

    # --- liveness --------------------------------------------------------------

    def register_loop(self, name: str, max_silence: float = DEFAULT_MAX_SILENCE) -> None:
        """Declare a loop that must keep beating; it counts as alive from now."""
        with self._lock:
            self._silence[name] = float(max_silence)
            self._beats[name] = self._clock()

    def beat(self, name: str) -> None:
        with self._lock:
            self._beats[name] = self._clock()
            self._silence.setdefault(name, DEFAULT_MAX_SILENCE)

    def retire_loop(self, name: str) -> None:
        """A loop that ended on purpose (stop requested) no longer counts."""
        with self._lock:
            self._beats.pop(name, None)
            self._silence.pop(name, None)

    def liveness(self) -> Status:
        now = self._clock()
        with self._lock:
            stale = [
                f"loop {name} silent for {now - self._beats[name]:.0f} s (allowed {limit:.0f} s)"
                for name, limit in sorted(self._silence.items())
                if now - self._beats[name] > limit
            ]
        return Status(not stale, tuple(stale))

    # --- readiness ---------------------------------------------------------------

    def set_problem(self, component: str, reason: str) -> None:
        with self._lock:
            self._problems[component] = reason

    def clear_problem(self, component: str) -> None:
        with self._lock:
            self._problems.pop(component, None)

    def add_check(self, component: str, check: Callable[[], str | None]) -> None:
        """`check()` returns None when `component` is fine, else the reason; run on each /readyz."""
        with self._lock:
            self._checks[component] = check

    def readiness(self) -> Status:
        with self._lock:
            problems = dict(self._problems)
            checks = dict(self._checks)
        for component, check in checks.items():
            try:
                reason = check()
            except Exception as exc:  # a check that cannot even run is a problem of its own
                reason = f"check failed: {exc!r}"[:300]
            if reason:
                problems[component] = reason
        return Status(not problems, tuple(f"{c}: {r}" for c, r in sorted(problems.items())))


HEALTH = Health()


class CachedCheck:
    """A readiness check that runs its probe at most every `ttl` seconds (a scrape every
    second must not become a database query every second)."""

    def __init__(self, probe: Callable[[], None], ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._probe = probe
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._checked_at: float | None = None
        self._reason: str | None = None

    def __call__(self) -> str | None:
        with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= self._ttl:
                try:
                    self._probe()
                    self._reason = None
                except Exception as exc:
                    self._reason = _one_line(exc)
                self._checked_at = now
            return self._reason


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
