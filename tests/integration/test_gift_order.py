"""Who receives the parcel, on the real path: the gift order a real WooCommerce 9.2.5 shop delivered,
sent byte for byte to a running ingest, through RabbitMQ and supplier_sync to the supplier simulator.

Order 158 ships to Giulia Verdi (Via Roma 1, Milano, no address_2, no company) and was bought by
Marco Neri (Neri Import SRL, Viale Europa 99, Scala B, int. 7, Torino): nothing of the buyer's
address may reach the supplier.
"""
from __future__ import annotations

import json

import requests

from shared.db import session_scope
from shared.products.mapping import import_product_map
from tests.integration.sync_harness import SyncHarness
from tests.integration.ingest_process import Ingest
from tests.recordings import RECORDED_SITE, delivery_of

GIFT_ORDER = 158
SNEAKER = (138, 0)  # the gift order's one line: product 138, no variation
STOCK_ID = 1001  # a model of the supplier simulator (SyncHarness)
# Every text of the buyer's address block; the real shop also sent billing's Californian "CA"
# as the state of an Italian shipping address before the rule.
BUYER = ("Marco", "Neri", "Viale Europa", "Scala B", "int. 7", "Torino", "10121", "CA", "TO")


def test_the_recorded_gift_order_is_sent_to_its_recipient_with_nothing_of_the_buyers_address(db, broker):
    delivery = delivery_of("order.created", GIFT_ORDER)
    with session_scope(db) as session:
        import_product_map(session, [(*SNEAKER, STOCK_ID)])
    sync = SyncHarness(broker, db)
    # The shop is the recorded one: its site is what the delivery names as its source.
    ingest = Ingest(AMQP_URL=broker, DATABASE_URL=db, WC_WEBHOOK_SECRET=delivery.secret, WC_URL=RECORDED_SITE)
    try:
        # As WooCommerce sent it: the same bytes, the same headers (the connection's own aside).
        headers = {k: v for k, v in delivery.headers.items() if k not in ("Host", "Content-Length")}
        answer = requests.post(ingest.url + "/webhooks/woocommerce", data=delivery.body,
                               headers=headers, timeout=15)
        assert answer.status_code == 200, answer.text
        assert answer.json()["status"] == "published"

        sync.wait_until(lambda: len(sync.supplier_orders()) == 1, what="the gift order sent to the supplier")
        [order] = sync.supplier_orders()
        assert order["key"] == "158" and order["items"] == {str(STOCK_ID): 1}
        recipient = order["recipient"]
        assert recipient == {
            "recipient": "Giulia Verdi",
            "careof": "",  # the gift's empty company, not the buyer's firm
            "notes": "",
            "street_name": "Via Roma 1",  # the gift's empty address_2, not the buyer's "Scala B, int. 7"
            "zip": "20121",
            "city": "Milano",
            "province": "MI",
            # The courier's number: the shipping phone is empty, so the buyer's, as the rule says.
            "phone": "+39 011 5550000",
            "countrycode": "IT",
        }
        sent = json.dumps(recipient, ensure_ascii=False)
        for text in BUYER:
            assert text not in sent, text
    finally:
        ingest.stop()
        ingest.close()
        sync.close()
