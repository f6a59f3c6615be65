"""Building the product map: `catalog list`, `products match|export|unmatched` against the simulators."""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator

import pytest
import requests

from shared.messaging import topology
from shared.messaging.amqp import Publisher
from shared.orders.intake import OrderIntake
from simulators.rewix import start_in_thread as start_rewix
from simulators.rewix.control import SimulatorControl
from simulators.shop import start_in_thread as start_shop
from tests.conftest import drain
from tests.integration.test_admin_views import cli_env, run
from tests.integration.web_process import TOKEN, bearer, start

KEY, SECRET = "ck_match_test", "cs_match_test"
API_KEY, PASSWORD = "match-key", "match-password"
MODELS = [  # two sizes of one sneaker share their code; the tee's code is its own
    {"stock_id": 100001, "product_id": 10, "code": "SNK-BLK", "barcode": "8001000000011", "size": "42", "name": "Sneaker"},
    {"stock_id": 100002, "product_id": 10, "code": "SNK-BLK", "barcode": "8001000000028", "size": "43", "name": "Sneaker"},
    {"stock_id": 100003, "product_id": 11, "code": "TEE-RED-M", "barcode": "", "size": "M", "name": "Tee"},
]


class Shops:
    def __init__(self) -> None:
        self.rewix = start_rewix(api_key=API_KEY, password=PASSWORD)
        SimulatorControl(self.rewix.url).seed_catalog(MODELS)
        self.shop = start_shop(consumer_key=KEY, consumer_secret=SECRET)

    def env(self, db: str, broker: str, **extra: str) -> dict[str, str]:
        return cli_env(db, broker, WC_URL=self.shop.url, WC_CONSUMER_KEY=KEY, WC_CONSUMER_SECRET=SECRET,
                       REWIX_API_URL=self.rewix.url, REWIX_API_KEY=API_KEY, REWIX_API_PASSWORD=PASSWORD, **extra)

    def close(self) -> None:
        self.rewix.stop()
        self.shop.stop()


@pytest.fixture
def shops() -> Iterator[Shops]:
    s = Shops()
    yield s
    s.close()


def load_products(shops: Shops) -> dict[str, dict]:
    sneaker, tee, mug, blank = shops.shop.products.add([
        {"name": "Sneaker", "sku": "SNK-BLK",
         "variations": [{"sku": "8001000000011", "size": "42"}, {"sku": "SNK-BLK", "size": "43"}]},
        {"name": "Tee red M", "sku": "TEE-RED-M"},
        {"name": "Our own mug", "sku": "MUG-1"},
        {"name": "No SKU yet"},
    ])
    return {"sneaker": sneaker, "tee": tee, "mug": mug, "blank": blank}


def test_catalog_list_shows_every_model_as_a_table_json_and_csv(db: str, broker: str, shops: Shops) -> None:
    env = shops.env(db, broker)
    assert run(["catalog", "sync"], env).exit_code == 0
    as_json = json.loads(run(["catalog", "list", "--json"], env).stdout)
    assert [(m["stock_id"], m["code"], m["barcode"], m["name"], m["size"]) for m in as_json] == [
        (m["stock_id"], m["code"], m["barcode"], m["name"], m["size"]) for m in MODELS
    ]
    assert all(isinstance(m["availability"], int) for m in as_json)
    rows = list(csv.DictReader(io.StringIO(run(["catalog", "list", "--csv"], env).stdout)))
    assert list(rows[0]) == ["stock_id", "code", "barcode", "name", "size", "availability"]
    assert [r["stock_id"] for r in rows] == ["100001", "100002", "100003"]
    table = run(["catalog", "list"], env).stdout.splitlines()
    assert table[0].split() == ["stock_id", "code", "barcode", "name", "size", "availability"]
    assert len(table) == 2 + len(MODELS) and "TEE-RED-M" in table[-1]


def test_products_match_maps_skus_equal_to_barcodes_and_codes_and_reports_the_rest(
    db: str, broker: str, shops: Shops, tmp_path
) -> None:
    env = shops.env(db, broker)
    products = load_products(shops)
    assert "catalog is empty" in run(["products", "match"], env).output
    assert run(["catalog", "sync"], env).exit_code == 0
    sneaker = products["sneaker"]
    size_42, size_43 = sneaker["variations"]

    result = run(["products", "match"], env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "wc_product_id,wc_variation_id,stock_id",
        f"{sneaker['id']},{size_42},100001",  # the variation's SKU is the model's barcode
        f"{products['tee']['id']},0,100003",  # the product's SKU is the one model with that code
    ]
    report = result.stderr.splitlines()
    assert report[0] == "matched 2 of 5 shop products and variations (1 by barcode, 1 by code)"
    assert (f"ambiguous: product {sneaker['id']} variation {size_43} 'Sneaker - 43': SKU SNK-BLK is the code of "
            "stock_ids 100001 (42), 100002 (43); set the SKU to the model's barcode, or add the row to the CSV by hand"
            ) in report
    assert (f"unmatched: product {products['mug']['id']} variation 0 'Our own mug': SKU MUG-1: no catalog model "
            "has this code or barcode") in report
    assert f"unmatched: product {products['blank']['id']} variation 0 'No SKU yet': no SKU" in report
    assert json.loads(run(["reservations", "--json"], env).stdout) == []  # writing the CSV imported nothing

    # The CSV is what products import reads, and --import loads it directly.
    out = tmp_path / "map.csv"
    assert run(["products", "match", "--output", str(out)], env).exit_code == 0
    assert out.read_text().splitlines() == result.stdout.splitlines()
    imported = run(["products", "match", "--import"], env)
    assert imported.exit_code == 0 and imported.stdout == "" and "imported 2 product mappings" in imported.stderr
    assert run(["products", "export"], env).stdout.splitlines() == result.stdout.splitlines()
    again = tmp_path / "again.csv"
    assert run(["products", "export", "--output", str(again)], env).exit_code == 0
    assert run(["products", "import", str(again)], env).stdout.strip() == "imported 2 product mappings"


def test_an_order_line_that_matched_nothing_shows_in_products_unmatched_and_on_the_page(
    db: str, broker: str, shops: Shops, tmp_path
) -> None:
    env = shops.env(db, broker)
    products = load_products(shops)
    assert run(["catalog", "sync"], env).exit_code == 0
    sneaker = products["sneaker"]
    size_42, size_43 = sneaker["variations"]
    lines = [
        {"product_id": sneaker["id"], "variation_id": size_42, "quantity": 1, "sku": "8001000000011"},
        {"product_id": sneaker["id"], "variation_id": size_43, "quantity": 1, "sku": "SNK-BLK"},
        {"product_id": products["mug"]["id"], "quantity": 2, "sku": "MUG-1"},
    ]
    order = shops.shop.state.create_order(status="pending", lines=lines)
    own_only = shops.shop.state.create_order(status="pending", lines=[lines[2]])
    publisher = Publisher(broker)
    try:
        intake = OrderIntake(db, publisher)
        assert intake.submit(order, "order.created").has_supplier_lines
        assert intake.submit(own_only, "order.created").ignored == "no supplier line"
    finally:
        publisher.close()
    drain(broker, topology.ORDER_LINES.name)

    listed = json.loads(run(["products", "unmatched", "--json"], env).stdout)
    by_product = {(r["product_id"], r["variation_id"]): r for r in listed}
    assert set(by_product) == {(sneaker["id"], size_43), (products["mug"]["id"], 0)}  # the size-42 line matched
    mug = by_product[(products["mug"]["id"], 0)]
    # Seen again within a minute, it is not written again: the first order stays the last one recorded.
    assert mug["sku"] == "MUG-1" and mug["last_order_id"] == order["id"]
    assert mug["first_seen_at"] <= mug["last_seen_at"]
    assert mug["reason"] == "SKU not in the supplier catalog, product not in the product map"
    assert by_product[(sneaker["id"], size_43)]["reason"] == "ambiguous: the code is shared by stock_ids 100001, 100002"
    table = run(["products", "unmatched"], env).stdout
    assert "MUG-1" in table and "SNK-BLK" in table

    web = start(db, broker, ADMIN_TOKEN=TOKEN)
    try:
        page = requests.get(web.url + "/", headers=bearer(), timeout=10).text
    finally:
        web.stop()
    section = page[page.index('id="unmatched"'):]
    section = section[: section.index("</section>")]
    assert "MUG-1" in section and "SNK-BLK" in section and "ambiguous" in section

    # Mapped by hand, the size-43 variation leaves the list.
    by_hand = tmp_path / "by-hand.csv"
    by_hand.write_text(f"wc_product_id,wc_variation_id,stock_id\n{sneaker['id']},{size_43},100002\n")
    assert run(["products", "import", str(by_hand)], env).exit_code == 0
    listed = json.loads(run(["products", "unmatched", "--json"], env).stdout)
    assert [(r["product_id"], r["variation_id"]) for r in listed] == [(products["mug"]["id"], 0)]


def test_products_match_leaves_out_what_the_owner_marked_as_the_shop_s_own(db: str, broker: str, shops: Shops) -> None:
    env = shops.env(db, broker)
    products = load_products(shops)
    assert run(["catalog", "sync"], env).exit_code == 0
    tee = products["tee"]
    # The shop's own tee, whose SKU happens to be a supplier model's code: the mark wins over the SKU.
    assert run(["products", "own", str(tee["id"])], env).exit_code == 0
    result = run(["products", "match", "--import"], env)
    assert result.exit_code == 0, result.output
    assert (f"own: product {tee['id']} variation 0 'Tee red M': marked as the shop's own "
            "(`rewix-sync products own`), not matched") in result.stderr.splitlines()
    assert "imported 1 product mappings" in result.stderr
    assert f"{tee['id']},0," not in run(["products", "export"], env).stdout
