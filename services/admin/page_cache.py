"""A part of the operator page kept while what it is built from has not changed, and briefly.

The reservations table is the page's largest part (every model an open order
needs, with its orders): building it reads and shapes every held line. It is
kept with the change marker read before it was built
(`shared.reservations.repository.change_marker`) and given again while the
marker stands still, for at most MAX_AGE seconds: the marker moves on when a
writer's statement runs, which may be before that writer commits, so a part
built in between could miss that write; it is never shown for longer than
MAX_AGE after it was read.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")
MAX_AGE = 2.0


@dataclass(frozen=True)
class _Kept(Generic[T]):
    marker: int
    read_at: float  # time.monotonic() when the marker was read, before the build
    value: T


class KeptPart(Generic[T]):
    def __init__(self, marker: Callable[[Session], int], build: Callable[[Session], T], *,
                 max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic) -> None:
        self._marker, self._build = marker, build
        self.max_age = max_age
        self._clock = clock
        self._kept: _Kept[T] | None = None
        self._lock = threading.Lock()
        self.builds = 0

    def get(self, session: Session) -> T:
        """The part as kept, or built now (in `session`) when the marker moved or it is MAX_AGE old."""
        read_at = self._clock()
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
