"""Order lines resolved to supplier models, remembered until the product map or the catalog changes.

Resolving a line (shared/products/mapping.py) is a query per order event, and
the product map changes only when someone imports one. The resolutions are
kept here (misses too: a shop product that is no supplier model, marked as
the shop's own or not) under the product lookup version, a number the
database moves whenever product_map, catalog_models or own_products is
written (migrations 0004 and 0012). The caller reads that number in the
statement it runs for the order anyway (shared/orders/intake.py) and resets
the cache when it moved, so an import is seen by the next order event, with
no extra round trip.

Thread-safe: one instance serves every thread of a process.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from shared.products.mapping import LineRef, ProductResolver, Resolution

# More distinct shop products than this and the cache starts again empty:
# memory stays bounded whatever the shop sells.
MAX_ENTRIES = 200_000


class ProductLookupCache:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._version: int | None = None  # None: not known yet, nothing is trusted
        self._entries: dict[LineRef, Resolution | None] = {}

    @property
    def version(self) -> int | None:
        return self._version

    def lookup(self, refs: Iterable[LineRef]) -> tuple[dict[LineRef, Resolution | None], list[LineRef]]:
        """(what is known, what must be asked) for these lines."""
        known: dict[LineRef, Resolution | None] = {}
        missing: list[LineRef] = []
        with self._lock:
            for ref in refs:
                if ref in self._entries:
                    known[ref] = self._entries[ref]
                else:
                    missing.append(ref)
        return known, missing

    def store(self, found: dict[LineRef, Resolution | None], version: int | None) -> None:
        """Keep what was asked while the cache stood at `version`; dropped if it has moved since."""
        with self._lock:
            if version is None or version != self._version:
                return
            if len(self._entries) + len(found) > self._max_entries:
                self._entries = {}
            self._entries.update(found)

    def reset(self, version: int) -> None:
        """The database is at `version` now: forget everything resolved before."""
        with self._lock:
            if version != self._version:
                self._version = version
                self._entries = {}

    def resolver(self, connection: Any):
        """A resolver for shared.orders.events.convert: the cache first, then one query for the rest."""

        def resolve(refs: list[LineRef]) -> dict[LineRef, Resolution]:
            version = self._version
            known, missing = self.lookup(refs)
            if missing:
                asked = ProductResolver(Session(bind=connection)).resolve(missing)
                found = {ref: asked.get(ref) for ref in missing}
                self.store(found, version)
                known.update(found)
            return {ref: found for ref, found in known.items() if found is not None}

        return resolve
