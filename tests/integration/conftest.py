"""Fixtures the integration modules share: ingest started once per module, a product map for it, and the
operator pages a module keeps running."""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import insert

from shared.db import session_scope
from shared.db.models import CatalogModel
from shared.products.mapping import import_product_map
from tests.integration.ingest_process import STOCK, Ingest, serving
from tests.integration.web_process import Pages


@pytest.fixture(scope="module")
def ingest(database_url: str, amqp_url: str) -> Iterator[Ingest]:
    yield from serving(AMQP_URL=amqp_url, DATABASE_URL=database_url)


@pytest.fixture(scope="module")
def pages() -> Iterator[Pages]:
    pool = Pages()
    yield pool
    pool.close()


@pytest.fixture
def catalog(db: str, broker: str) -> str:
    """Product map for VARIATION and SIMPLE, catalog models for BY_CODE (code) and BY_BARCODE (barcode)."""
    with session_scope(db) as session:
        import_product_map(session, [(2101, 2104, STOCK[2101]), (3307, 0, STOCK[3307])])
        session.execute(insert(CatalogModel), [
            {"stock_id": STOCK[4400], "product_id": 500, "code": "JKT-ÉTÉ-M", "barcode": "8056789000001"},
            {"stock_id": STOCK[4500], "product_id": 501, "code": "SCARF", "barcode": "8056789012345"},
            # A model whose code matches no SKU in these orders.
            {"stock_id": 70099, "product_id": 502, "code": "OTHER", "barcode": ""},
        ])
    return db
