"""services/admin/page_cache.py: a page part kept while the change marker stands still, and never long;
kept current by its own thread when it has a session factory."""
from __future__ import annotations

import contextlib
import threading
import time

from devstack.waiting import wait_until
from services.admin import page_cache
from services.admin.page_cache import MAX_AGE, KeptPart


class World:
    def __init__(self) -> None:
        self.now = 100.0
        self.marker = 1
        self.version = 0

    def build(self, session: object) -> str:
        self.version += 1
        return f"built {self.version} at marker {self.marker}"


def part(world: World) -> KeptPart[str]:
    return KeptPart(lambda session: world.marker, world.build, clock=lambda: world.now)


def test_kept_while_the_marker_stands_still_and_younger_than_max_age() -> None:
    world = World()
    kept = part(world)
    first = kept.get(None)
    world.now += MAX_AGE / 2
    assert kept.get(None) is first and kept.builds == 1
    world.now += MAX_AGE / 2  # as old as MAX_AGE: built again, though nothing moved
    assert kept.get(None) == "built 2 at marker 1" and kept.builds == 2


def test_built_again_as_soon_as_the_marker_moves() -> None:
    world = World()
    kept = part(world)
    kept.get(None)
    world.marker += 1
    assert kept.get(None) == "built 2 at marker 2"
    assert kept.get(None) == "built 2 at marker 2" and kept.builds == 2


def test_its_age_counts_from_before_the_build() -> None:
    world = World()

    def slow_build(session: object) -> str:
        world.now += MAX_AGE  # a build that took as long as MAX_AGE is already too old to give again
        return world.build(session)

    kept = KeptPart(lambda session: world.marker, slow_build, clock=lambda: world.now)
    kept.get(None)
    kept.get(None)
    assert kept.builds == 2


# -- kept current by its own thread ----------------------------------------------------------------

REFRESH = 0.02


class Counted(World):
    def __init__(self) -> None:
        super().__init__()
        self.marker_reads: list[str] = []
        self.fail = False
        self.release = threading.Event()
        self.release.set()

    def read_marker(self, session: object) -> int:
        self.marker_reads.append(str(session))
        return self.marker

    def build(self, session: object) -> str:
        self.release.wait(5)
        return super().build(session)

    @contextlib.contextmanager
    def sessions(self):
        if self.fail:
            raise ConnectionError("database away")
        yield "thread"


def threaded(world: Counted, **kw: float) -> KeptPart[str]:
    return KeptPart(world.read_marker, world.build, sessions=world.sessions, refresh_every=REFRESH, **kw)


def test_the_thread_builds_again_when_the_marker_moves_and_a_page_load_takes_it_without_reading() -> None:
    world = Counted()
    kept = threaded(world)
    try:
        assert kept.get("request") == "built 1 at marker 1"  # nothing kept yet: the first load builds
        world.marker += 1
        wait_until(lambda: world.version == 2, timeout=5, what="the thread's build")
        reads = len(world.marker_reads)
        assert kept.get("request") == "built 2 at marker 2"
        assert "request" not in world.marker_reads[reads:]  # the load took what the thread built
    finally:
        kept.stop()


def test_a_page_load_does_not_wait_for_a_build_in_progress() -> None:
    world = Counted()
    kept = threaded(world)
    try:
        first = kept.get("request")
        world.release.clear()  # the next build hangs
        world.marker += 1
        wait_until(lambda: "thread" in world.marker_reads[-1:], timeout=5, what="the thread reading the marker")
        time.sleep(REFRESH * 3)
        started = time.monotonic()
        assert kept.get("request") is first
        assert time.monotonic() - started < 0.5
    finally:
        world.release.set()
        kept.stop()


def test_nobody_looking_means_no_reads(monkeypatch) -> None:
    monkeypatch.setattr(page_cache, "IDLE_SECONDS", 0.05)
    world = Counted()
    kept = threaded(world)
    try:
        kept.get("request")
        time.sleep(0.3)
        reads = len(world.marker_reads)
        time.sleep(0.3)
        assert len(world.marker_reads) == reads
    finally:
        kept.stop()


def test_a_thread_that_cannot_reach_the_database_leaves_the_page_loads_to_build() -> None:
    world = Counted()
    kept = threaded(world, max_age=0.1)
    try:
        kept.get("request")
        world.fail = True
        world.marker += 1
        time.sleep(0.1 + REFRESH * 3)  # older than max_age + the refresh interval
        assert kept.get("request") == "built 2 at marker 2"
        assert world.marker_reads[-1] == "request"
    finally:
        kept.stop()
