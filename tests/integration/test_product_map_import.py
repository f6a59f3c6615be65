"""The product map against the database: the import (also through `rewix-sync products import`) and line resolution."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from shared.db import session_scope
from shared.db.models import CatalogModel, ProductMapping
from shared.products.mapping import LineRef, ProductResolver, import_product_map

HEADER = "wc_product_id,wc_variation_id,stock_id\n"
CLI = str(Path(sys.executable).with_name("rewix-sync"))


def rows_in(url: str) -> dict[tuple[int, int], int]:
    with session_scope(url) as session:
        return {(r.wc_product_id, r.wc_variation_id): r.stock_id for r in session.execute(select(ProductMapping)).scalars()}


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)


# -- the import ----------------------------------------------------------------------------------


def test_import_upserts_rows(db: str) -> None:
    with session_scope(db) as session:
        assert import_product_map(session, [(2101, 2104, 70001), (3307, 0, 70002)]) == 2
    with session_scope(db) as session:
        import_product_map(session, [(2101, 2104, 79999)])
        assert import_product_map(session, []) == 0
    assert rows_in(db) == {(2101, 2104): 79999, (3307, 0): 70002}


def test_cli_imports_a_file_and_reimporting_updates_it(db: str, tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text("\ufeff" + HEADER + "2101,2104,70001\n3307,0,70002\n", encoding="utf-8")  # a BOM, as Excel writes
    result = cli(db, "products", "import", str(path))
    assert result.returncode == 0, result.stderr
    assert "imported 2 product mappings" in result.stdout
    path.write_text(HEADER + "3307,0,70009\n", encoding="utf-8")
    assert cli(db, "products", "import", str(path)).returncode == 0
    assert rows_in(db) == {(2101, 2104): 70001, (3307, 0): 70009}


def test_cli_reports_a_bad_row_by_line_number_and_applies_nothing(db: str, tmp_path: Path) -> None:
    with session_scope(db) as session:
        import_product_map(session, [(3307, 0, 70002)])
    path = tmp_path / "map.csv"
    path.write_text(HEADER + "2101,2104,70001\n3307,0,70009\n4400,x,70003\n", encoding="utf-8")
    result = cli(db, "products", "import", str(path))
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "line 4" in line and "nothing was imported" in line
    assert rows_in(db) == {(3307, 0): 70002}


def test_cli_refuses_a_file_that_is_not_utf8(db: str, tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_bytes(HEADER.encode() + b"2101,2104,70001 \xff\xfe\n")
    result = cli(db, "products", "import", str(path))
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "not a UTF-8 text file" in line
    assert rows_in(db) == {}


@pytest.fixture
def catalog(db: str) -> str:
    with session_scope(db) as session:
        import_product_map(session, [(2101, 2104, 70001), (3307, 0, 70002)])
        session.execute(insert(CatalogModel), [
            {"stock_id": 80001, "product_id": 1, "code": "JKT-M", "barcode": "8050000000001"},
            {"stock_id": 80002, "product_id": 2, "code": "SHARED", "barcode": "8050000000002"},
            {"stock_id": 80003, "product_id": 2, "code": "SHARED", "barcode": "8050000000003"},
            {"stock_id": 80004, "product_id": 3, "code": "8050000000005", "barcode": ""},
            {"stock_id": 80005, "product_id": 4, "code": "X", "barcode": "8050000000005"},
            # The map wins over the catalog for a mapped product.
            {"stock_id": 80006, "product_id": 5, "code": "TEE-0001", "barcode": ""},
        ])
    return db


def test_resolution_by_map_then_code_then_barcode(catalog: str) -> None:
    lines = {
        "mapped variation": LineRef(2101, 2104, "whatever"),
        "mapped simple": LineRef(3307, 0, "TEE-0001"),
        "by code": LineRef(4400, 4401, "JKT-M"),
        "by barcode": LineRef(4500, 0, "8050000000002"),
        "barcode beats another model's code": LineRef(4600, 0, "8050000000005"),
        "ambiguous code": LineRef(4700, 0, "SHARED"),
        "shop's own": LineRef(9100, 0, "GIFT"),
        "no sku": LineRef(9200, 0, ""),
        "map needs the variation too": LineRef(2101, 9999, ""),
    }
    with session_scope(catalog) as session:
        found = ProductResolver(session).resolve(lines.values())
    assert {name: found.get(ref) for name, ref in lines.items()} == {
        "mapped variation": 70001,
        "mapped simple": 70002,
        "by code": 80001,
        "by barcode": 80002,
        "barcode beats another model's code": 80005,
        "ambiguous code": None,
        "shop's own": None,
        "no sku": None,
        "map needs the variation too": None,
    }


def test_resolving_nothing_asks_nothing(catalog: str) -> None:
    with session_scope(catalog) as session:
        assert ProductResolver(session).resolve([]) == {}
