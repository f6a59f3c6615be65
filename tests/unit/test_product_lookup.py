"""The cache of line resolutions: what it keeps, and when it forgets."""
from __future__ import annotations

from shared.products.lookup import ProductLookupCache
from shared.products.mapping import LineRef

A = LineRef(1, 0, "A")
B = LineRef(2, 5, "B")
C = LineRef(3, 0, "")


def test_nothing_is_kept_before_the_version_is_known() -> None:
    cache = ProductLookupCache()
    cache.store({A: 10}, None)
    assert cache.lookup([A]) == ({}, [A])


def test_hits_and_misses_are_kept_at_the_current_version() -> None:
    cache = ProductLookupCache()
    cache.reset(7)
    cache.store({A: 10, B: None}, 7)
    assert cache.lookup([A, B, C]) == ({A: 10, B: None}, [C])


def test_a_new_version_forgets_everything() -> None:
    cache = ProductLookupCache()
    cache.reset(7)
    cache.store({A: 10}, 7)
    cache.reset(8)
    assert cache.version == 8
    assert cache.lookup([A]) == ({}, [A])


def test_the_same_version_again_keeps_the_entries() -> None:
    cache = ProductLookupCache()
    cache.reset(7)
    cache.store({A: 10}, 7)
    cache.reset(7)
    assert cache.lookup([A]) == ({A: 10}, [])


def test_what_was_asked_before_a_reset_is_not_kept_after_it() -> None:
    # Another thread saw a newer version while this one was querying: its answer may be stale.
    cache = ProductLookupCache()
    cache.reset(7)
    cache.reset(8)
    cache.store({A: 10}, 7)
    assert cache.lookup([A]) == ({}, [A])


def test_the_cache_starts_again_when_full() -> None:
    cache = ProductLookupCache(max_entries=2)
    cache.reset(1)
    cache.store({A: 10, B: 11}, 1)
    cache.store({C: None}, 1)
    assert cache.lookup([A, B, C]) == ({C: None}, [A, B])
