"""A part of the operator page kept while what it is built from has not changed, and briefly.

The reservations table is the page's largest part (every model an open order
needs, with its orders): building it reads and shapes every held line. It is
kept with the change marker read before it was built
(`shared.reservations.repository.change_marker`) and given again while the
marker stands still, for at most MAX_AGE seconds: the marker moves on when a
writer's statement runs, which may be before that writer commits, so a part
built in between could miss that write; it is never shown for longer than
MAX_AGE after it was read.

With a session factory, a thread keeps the part current instead of the page
loads: while the page was asked for in the last IDLE_SECONDS it reads the
marker every REFRESH_SECONDS and builds the part again when it moved or the
part is MAX_AGE old. A page load takes the part the thread last built and
never waits for a build: a committed change shows within REFRESH_SECONDS and
the build's own time, a write the marker could not tell apart (above) within
MAX_AGE + REFRESH_SECONDS. Should the thread fall behind (a slow database),
a page load finding the part older than that builds it itself, as without
the thread.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ContextManager, Generic, TypeVar

from sqlalchemy.orm import Session

from shared.observability.logging import get_logger

log = get_logger("admin")

T = TypeVar("T")
MAX_AGE = 2.0
REFRESH_SECONDS = 0.5
# Nobody has loaded the page for this long: the thread stops reading the database until someone does.
IDLE_SECONDS = 120.0


@dataclass(frozen=True)
class _Kept(Generic[T]):
    marker: int
    read_at: float  # time.monotonic() when the marker was read, before the build
    value: T


class KeptPart(Generic[T]):
    def __init__(self, marker: Callable[[Session], int], build: Callable[[Session], T], *,
                 max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic,
                 sessions: Callable[[], ContextManager[Session]] | None = None,
                 refresh_every: float = REFRESH_SECONDS) -> None:
        self._marker, self._build = marker, build
        self.max_age = max_age
        self._clock = clock
        self._kept: _Kept[T] | None = None
        self._lock = threading.Lock()
        self.builds = 0
        self._sessions = sessions
        self._refresh_every = refresh_every
        self._asked_at = float("-inf")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, session: Session) -> T:
        """The part as kept (by the thread, when there is one), or built now in `session`.

        Without the thread: built when the marker moved or the part is MAX_AGE old.
        With it: built only when the thread has not built it for MAX_AGE + REFRESH_SECONDS.
        """
        now = self._asked_at = self._clock()
        kept = self._kept
        if self._sessions is not None:
            self._start()
            if kept is not None and now - kept.read_at < self.max_age + self._refresh_every:
                return kept.value  # the thread keeps it current
        return self._refresh(session, now)

    def _refresh(self, session: Session, read_at: float) -> T:
        marker = self._marker(session)
        kept = self._kept
        if kept is not None and kept.marker == marker and read_at - kept.read_at < self.max_age:
            return kept.value
        value = self._build(session)
        with self._lock:
            self.builds += 1
            if self._kept is None or self._kept.read_at <= read_at:  # a later build by another thread stays
                self._kept = _Kept(marker, read_at, value)
        return value

    # -- the thread that keeps it current ----------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None:
            with self._lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._keep_current, name="page-part", daemon=True)
                    self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _keep_current(self) -> None:
        assert self._sessions is not None
        failing = False
        while not self._stop.wait(self._refresh_every):
            now = self._clock()
            if now - self._asked_at > IDLE_SECONDS:
                continue
            try:
                with self._sessions() as session:
                    self._refresh(session, now)
                if failing:
                    log.info("page part kept current again")
                failing = False
            except Exception as exc:  # a database away: page loads build the part themselves meanwhile
                if not failing:
                    log.warning("page part not kept current", error_type=type(exc).__name__)
                failing = True
