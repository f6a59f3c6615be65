"""Whether a signed delivery comes from the shop's own site, and what is kept of those that do not.

A hosting "staging" copy of the shop keeps the webhooks and their secret: its
deliveries are signed like the shop's and carry live order ids. Ingest
refuses (403) a signed delivery whose X-WC-Webhook-Source is not one of the
accepted sites (shared/shop_state/sites.py): the shop's home as the shop reports it
(learned by status_poller, kept in the database: shared/shop_state/site_records.py),
WC_URL's site, WC_WEBHOOK_SOURCES.

- `SiteCache`: ingest never asks the shop per delivery. It reads the learned
  home from the database at most every REFRESH_SECONDS, one thread at a time
  while the others go on with what is cached; a failed read keeps what was
  cached. The configured sites need no database at all.
- `SourceRefusals`: what was refused is added up per source and, at most once
  every RECORD_SECONDS per source, logged as one warning and written as one
  row update carrying the count (by a thread of its own, never on the
  request's path), so `rewix-sync status` names the source within seconds.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone

from shared.observability.logging import get_logger
from shared.shop_state.site_records import WHAT_TO_DO, LearnedSite, Refused, accepted_sites, source_name
from shared.shop_state.sites import AcceptedSites

log = get_logger("ingest")

# How old the learned home in ingest may be: a home status_poller has just read reaches ingest within this.
REFRESH_SECONDS = 30.0
# After a failed read of the database, the next try.
RETRY_SECONDS = 5.0
# At most one warning and one database write per source this often, per process.
RECORD_SECONDS = 60.0
# How often the recording thread looks for counts that are due.
_FLUSH_LOOK_SECONDS = 1.0
# Distinct sources counted apart in one process; any beyond are counted together under OTHER_SOURCES.
MAX_SOURCES = 100
OTHER_SOURCES = "(more sources than ingest counts apart)"


class SiteCache:
    """The sites a delivery may come from: the configured ones, and the learned home read from the database."""

    def __init__(
        self,
        configured: AcceptedSites,
        read_learned: Callable[[], LearnedSite | None],
        *,
        refresh: float = REFRESH_SECONDS,
        retry: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.configured = configured
        self._read_learned = read_learned
        self._refresh = refresh
        self._retry = retry
        self._clock = clock
        self._lock = threading.Lock()
        self._sites: AcceptedSites | None = None  # None until the database was read once
        self._next_read = 0.0
        self._failing = False

    def current(self) -> AcceptedSites | None:
        """Every accepted site, or None while the database has never answered (then only the
        configured ones are known: `configured`)."""
        if self._clock() >= self._next_read:
            # The very first read is waited for; later, a thread that finds another reading goes on
            # with what is cached.
            if self._lock.acquire(blocking=self._sites is None):
                try:
                    if self._clock() >= self._next_read:
                        self._read()
                finally:
                    self._lock.release()
        return self._sites

    def _read(self) -> None:
        try:
            learned = self._read_learned()
        except Exception as exc:  # database down or slow: keep what is cached, try again soon
            self._next_read = self._clock() + self._retry
            if not self._failing:
                self._failing = True
                log.warning("the shop's site could not be read from the database; going on with "
                            + ("the sites read before" if self._sites is not None else "WC_URL and WC_WEBHOOK_SOURCES"),
                            error=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            return
        if self._failing:
            self._failing = False
            log.info("the shop's site is read from the database again")
        sites = accepted_sites(self.configured, learned)
        if self._sites is None or sites.sites != self._sites.sites:
            log.info("webhook deliveries accepted from", sites=sites.describe())
        self._sites = sites
        self._next_read = self._clock() + self._refresh


class SourceRefusals:
    """Refusals added up per source; `refused()` never waits on the database."""

    def __init__(
        self,
        write: Callable[[list[Refused]], None],
        *,
        every: float = RECORD_SECONDS,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self._write = write
        self._every = every
        self._background = background
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()
        self._pending: dict[str, Refused] = {}
        self._seen: set[str] = set()  # every source counted apart so far (at most MAX_SOURCES)
        # When each source was last written (or tried): the next write waits `every` after it.
        self._last_written: dict[str, float] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refused(self, source: str | None) -> None:
        """One more delivery refused from `source` (the header as sent; None when it was missing)."""
        name = source_name(source)
        at = self._now()
        with self._lock:
            if name not in self._seen:
                if len(self._seen) >= MAX_SOURCES:
                    name = OTHER_SOURCES
                else:
                    self._seen.add(name)
            known = self._pending.get(name)
            self._pending[name] = (replace(known, count=known.count + 1, last_at=at) if known
                                   else Refused(name, 1, at, at))
            if self._background and self._thread is None:
                # Started here, in the serving process (gunicorn forks after the app is built).
                self._thread = threading.Thread(target=self._run, name="refused-sources", daemon=True)
                self._thread.start()
        self._wake.set()

    def flush(self, *, everything: bool = False) -> list[Refused]:
        """Log and write the counts of every source not written for `every` seconds (all of them with
        `everything`); returns what was taken. A failed write puts the counts back for the next time."""
        now = self._clock()
        with self._lock:
            due = [name for name in self._pending
                   if everything or now - self._last_written.get(name, float("-inf")) >= self._every]
            batch = [self._pending.pop(name) for name in due]
            for name in due:
                self._last_written[name] = now
        if not batch:
            return []
        for refused in batch:
            log.warning("signed webhook deliveries refused: not from the shop's site",
                        source=refused.source or None, refused=refused.count,
                        since=refused.first_at.isoformat(timespec="seconds"), hint=WHAT_TO_DO)
        try:
            self._write(batch)
        except Exception as exc:  # the database is down: keep the counts, write them with the next ones
            log.warning("refused webhook deliveries not recorded yet", sources=len(batch),
                        error=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__)
            with self._lock:
                for refused in batch:
                    known = self._pending.get(refused.source)
                    self._pending[refused.source] = refused if known is None else Refused(
                        refused.source, refused.count + known.count, refused.first_at, known.last_at)
        return batch

    def close(self) -> None:
        """Write what is still counted (the process is stopping)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._thread is None or not self._thread.is_alive():
            self.flush(everything=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(_FLUSH_LOOK_SECONDS)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.flush()
            except Exception as exc:  # a bug: never lose the thread (the counts stay pending)
                log.error("recording refused webhook deliveries failed", error=repr(exc)[:300])
