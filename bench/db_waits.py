"""What a run's database connections are doing, sampled: working, waiting for a lock, or idle.

PostgreSQL's pg_stat_activity is looked at every SAMPLE_INTERVAL seconds for
the backends of one database (the run's scratch database, so other work on
the shared server is not counted). The mean number of backends waiting on a
heavyweight lock (`wait_event_type = 'Lock'`: row locks, advisory locks)
says whether processes that could work in parallel queue behind each other.
"""
from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import create_engine, text

from shared.db import normalise_url

SAMPLE_INTERVAL = 0.1

_STATES = text(
    """
    SELECT CASE WHEN wait_event_type = 'Lock' THEN 'lock wait'
                WHEN state = 'active' THEN 'active'
                WHEN state LIKE 'idle in transaction%' THEN 'idle in transaction'
                ELSE 'idle' END AS what,
           count(*)
    FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
    GROUP BY 1
    """
)


class DatabaseWaits(threading.Thread):
    """Samples until `stop()`; `means()` gives the mean number of backends in each state."""

    def __init__(self, database_url: str) -> None:
        super().__init__(name="db-waits", daemon=True)
        self._engine = create_engine(normalise_url(database_url), pool_size=1, max_overflow=0)
        self._halt = threading.Event()
        self._totals: Counter[str] = Counter()
        self._samples = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            with self._engine.connect() as connection:
                while not self._halt.is_set():
                    rows = connection.execute(_STATES).all()
                    connection.rollback()
                    self._totals.update({what: int(count) for what, count in rows})
                    self._samples += 1
                    self._halt.wait(SAMPLE_INTERVAL)
        except Exception as exc:  # reported with the figures, never fatal to the run
            self.error = repr(exc)[:300]

    def stop(self) -> dict[str, float]:
        self._halt.set()
        self.join(timeout=5)
        self._engine.dispose()
        return self.means()

    def means(self) -> dict[str, float]:
        if not self._samples:
            return {}
        return {what: total / self._samples for what, total in sorted(self._totals.items())}
