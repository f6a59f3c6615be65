"""A supplier_sync handler that dies (os._exit, as a SIGKILL would) right after the supplier answers.

Run as `python -m tests.integration.dies_after_supplier_call URL KEY PASSWORD CALL`
with DATABASE_URL set and one order-line message on stdin: the handler takes
it as a batch, and the process ends with exit code 9 as soon as the supplier
has answered call number CALL (1: the first `set`; "send": the dropshipping
order). Nothing it did after that call is committed, as after a real kill.
"""
from __future__ import annotations

import os
import sys

from shared.clients.rewix import RewixClient
from shared.messaging.consumer import Delivery
from services.supplier_sync.handler import OrderLineHandler
from services.supplier_sync.sql_unit_of_work import sql_units

DIED = 9


class DyingClient(RewixClient):
    def __init__(self, *args, die_after: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.die_after = die_after
        self.sets = 0

    def modify_growing_order(self, *args, **kwargs):
        answer = super().modify_growing_order(*args, **kwargs)
        self.sets += 1
        if self.die_after == str(self.sets):
            os._exit(DIED)
        return answer

    def send_dropshipping_order(self, *args, **kwargs):
        answer = super().send_dropshipping_order(*args, **kwargs)
        if self.die_after == "send":
            os._exit(DIED)
        return answer


def main() -> None:
    url, key, password, die_after = sys.argv[1:5]
    body = sys.stdin.buffer.read()
    handler = OrderLineHandler(sql_units(os.environ["DATABASE_URL"]), DyingClient(url, key, password, timeout=5, die_after=die_after))
    handler([Delivery(body=body, message_id="dying", headers={}, delivery_tag=1, redelivered=False)])
    sys.exit(0)  # the call never came: the test says so


if __name__ == "__main__":
    main()
