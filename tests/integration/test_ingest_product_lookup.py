"""ingest keeps line resolutions in memory and still sees every change of the product map or the catalog
at the next order event, without a restart (shared/products/lookup.py, migration 0004)."""
from __future__ import annotations

from sqlalchemy import delete, insert, text, update

from shared.db import session_scope
from shared.db.models import CatalogModel, ProductMapping
from shared.products.mapping import import_product_map
from simulators.shop.orders import make_order
from tests.integration.ingest_process import SHOP_OWN, Ingest, published

NEW_PRODUCT = {"product_id": 7700, "variation_id": 7701, "quantity": 1, "sku": "NEW-7701",
               "name": "Boot - 41", "price": "150.00"}


def lines_of(ingest: Ingest, broker: str, order_id: int) -> dict[int, int]:
    """product_id -> stock_id of what one webhook of the order published."""
    response = ingest.order(make_order(order_id, lines=[NEW_PRODUCT, SHOP_OWN]), "order.created")
    assert response.status_code == 200, response.text
    return {m.line.product_id: m.line.stock_id for m in published(broker) if m.line}


def test_an_import_a_catalog_change_and_a_removal_are_seen_by_the_next_event(
    ingest: Ingest, db: str, broker: str
) -> None:
    assert lines_of(ingest, broker, 6001) == {}  # not a supplier product yet: remembered as such

    with session_scope(db) as session:
        import_product_map(session, [(7700, 7701, 88001)])
    assert lines_of(ingest, broker, 6002) == {7700: 88001}

    with session_scope(db) as session:  # re-imported with another model
        import_product_map(session, [(7700, 7701, 88002)])
    assert lines_of(ingest, broker, 6003) == {7700: 88002}

    with session_scope(db) as session:
        session.execute(delete(ProductMapping))
    assert lines_of(ingest, broker, 6004) == {}

    with session_scope(db) as session:  # the catalog alone: the SKU is a model's code
        session.execute(insert(CatalogModel), [{"stock_id": 88003, "product_id": 9, "code": "NEW-7701", "barcode": ""}])
    assert lines_of(ingest, broker, 6005) == {7700: 88003}

    with session_scope(db) as session:
        session.execute(update(CatalogModel).values(code="RENAMED"))
    assert lines_of(ingest, broker, 6006) == {}


def test_connections_postgresql_dropped_prepare_the_statement_again(ingest: Ingest, db: str, broker: str) -> None:
    """REMEMBER is prepared per connection (shared/orders/intake.py): a new connection must prepare it anew."""
    with session_scope(db) as session:
        import_product_map(session, [(7700, 7701, 88001)])
    assert lines_of(ingest, broker, 6101) == {7700: 88001}
    with session_scope(db) as session:
        dropped = session.execute(text(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'rewix-sync' AND pid <> pg_backend_pid()"
        )).scalar_one()
    assert dropped >= 1
    for order_id in (6102, 6103, 6104):  # each on whatever connection the pool hands out
        assert lines_of(ingest, broker, order_id) == {7700: 88001}
