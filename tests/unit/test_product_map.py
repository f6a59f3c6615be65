"""The product map file format, without a database: parsing and bad rows."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.products.mapping import ImportError_, parse_product_map

HEADER = "wc_product_id,wc_variation_id,stock_id\n"
CLI = str(Path(sys.executable).with_name("rewix-sync"))


def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([CLI, *args], env=env, capture_output=True, text=True, timeout=60)


# -- parsing ---------------------------------------------------------------------------------------


def test_parse_simple_and_variation_rows() -> None:
    text = HEADER + "2101,2104,70001\n3307,0,70002\n\n 4400 , 4401 , 70003 \n"
    assert sorted(parse_product_map(text)) == [(2101, 2104, 70001), (3307, 0, 70002), (4400, 4401, 70003)]


def test_the_header_may_differ_in_case_and_spaces_and_a_repeated_row_keeps_the_last() -> None:
    text = " WC_Product_ID , wc_variation_id,Stock_Id\r\n2101,2104,1\r\n2101,2104,2\r\n"
    assert parse_product_map(text) == [(2101, 2104, 2)]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "line 1: the file is empty"),
        ("product,variation,stock\n1,0,2\n", "line 1: expected the header wc_product_id,wc_variation_id,stock_id"),
        (HEADER + "1,0,2\n3,0\n", "line 3: expected 3 fields, got 2"),
        (HEADER + "1,0,2\n\n\n3,0,4,5\n", "line 5: expected 3 fields, got 4"),
        (HEADER + "1,0,2\n2,zero,3\n", "line 3: every field must be a whole number: 2,zero,3"),
        (HEADER + "1,0,2\n2,,3\n", "line 3: every field must be a whole number"),
        (HEADER + "-1,0,2\n", "line 2: every field must be a whole number"),
        (HEADER + "1_000,0,2\n", "line 2: every field must be a whole number"),
        (HEADER + "1.5,0,2\n", "line 2: every field must be a whole number"),
        (HEADER + "٣,0,2\n", "line 2: every field must be a whole number"),
        (HEADER + "0,0,2\n", "line 2: ids must be positive"),
        (HEADER + "1,0,0\n", "line 2: ids must be positive"),
        (HEADER + f"1,0,{2**63}\n", "line 2: an id is larger than"),
    ],
)
def test_a_bad_row_is_reported_with_its_line_number(text: str, problem: str) -> None:
    with pytest.raises(ImportError_) as raised:
        parse_product_map(text)
    assert problem in str(raised.value)


# -- importing -------------------------------------------------------------------------------------


def test_cli_says_in_one_line_when_the_database_is_down(tmp_path: Path) -> None:
    path = tmp_path / "map.csv"
    path.write_text(HEADER + "2101,2104,70001\n", encoding="utf-8")
    result = cli("postgresql://postgres@127.0.0.1:1/nothing", "products", "import", str(path))
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "database unavailable" in line


# -- resolving order lines -------------------------------------------------------------------------


