"""services/admin/page_cache.py: a page part kept while the change marker stands still, and never long."""
from __future__ import annotations

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
