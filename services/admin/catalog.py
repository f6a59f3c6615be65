"""The supplier catalog, stored locally: stock_id, product, code, barcode, availability and price per model.

Downloads only what changed since the stored `lastUpdate`; when the supplier
says that is too long ago (412) it downloads the whole catalog instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy.dialects.postgresql import insert

from shared.clients.rewix import Catalog, IncrementalWindowExpired, RewixClient
from shared.db import session_scope
from shared.db.models import CatalogModel, SyncState

LAST_UPDATE = "catalog_last_update"
CHUNK = 1000


@dataclass(frozen=True)
class CatalogSync:
    models: int
    full: bool
    since: str | None
    last_update: str | None


def download(client: RewixClient, since: str | None) -> tuple[Catalog, bool]:
    """(catalog, whether it is the full one)."""
    if since is None:
        return client.download_catalog(), True
    try:
        return client.download_catalog(since=since), False
    except IncrementalWindowExpired:
        return client.download_catalog(), True


def sync(database_url: str, client: RewixClient) -> CatalogSync:
    with session_scope(database_url) as session:
        state = session.get(SyncState, LAST_UPDATE)
        since = state.value if state else None
    catalog, full = download(client, since)
    now = datetime.now(timezone.utc)
    models = {m.stock_id: m for m in catalog.models}  # one row per stock_id, the last one wins
    with session_scope(database_url) as session:
        rows = [
            {"stock_id": m.stock_id, "product_id": m.product_id, "code": m.code[:200], "barcode": m.barcode[:200],
             "name": m.name[:300], "size": m.size[:100],
             "availability": m.availability, "price": m.price, "currency": m.currency, "updated_at": now}
            for m in models.values()
        ]
        for start in range(0, len(rows), CHUNK):
            stmt = insert(CatalogModel).values(rows[start : start + CHUNK])
            session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[CatalogModel.stock_id],
                    set_={k: stmt.excluded[k] for k in ("product_id", "code", "barcode", "name", "size", "availability",
                                                    "price", "currency", "updated_at")},
                )
            )
        if catalog.last_update:
            stmt = insert(SyncState).values(name=LAST_UPDATE, value=catalog.last_update, updated_at=now)
            session.execute(
                stmt.on_conflict_do_update(index_elements=[SyncState.name],
                                           set_={"value": stmt.excluded.value, "updated_at": now})
            )
    return CatalogSync(len(models), full, since, catalog.last_update)
