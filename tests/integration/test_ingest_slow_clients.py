"""Slow clients do not block ingest: a signed webhook on a fresh connection is answered within 5 s
while 16 other connections trickle a byte every 3 s (services/ingest/worker.py), over real HTTP."""
from __future__ import annotations

import socket
import threading
import time
import urllib.parse

import pytest
import requests

from shared.clients.shop.signature import sign
from services.ingest.worker import READ_DEADLINE_SECONDS
from tests.integration.ingest_process import SECRET, SITE, VARIATION, Ingest, published
from simulators.shop.orders import make_order
from simulators.shop.php_json import wp_json_encode

TRICKLERS = 16
TRICKLE_EVERY = 3.0
ANSWER_WITHIN = 5.0


class Trickler(threading.Thread):
    """Opens a connection and sends a webhook's headers one byte every TRICKLE_EVERY seconds, reconnecting when cut."""

    def __init__(self, url: str, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        parts = urllib.parse.urlsplit(url)
        self.address = (parts.hostname, parts.port)
        self.stop = stop
        self.lifetimes: list[float] = []  # seconds from connecting to being cut by ingest
        self.connected = threading.Event()
        self.request = (b"POST /webhooks/woocommerce HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\n"
                        b"X-WC-Webhook-Topic: order.updated\r\nContent-Length: 100000\r\n\r\n")

    def run(self) -> None:
        while not self.stop.is_set():
            sock = socket.create_connection(self.address, timeout=10)
            opened = time.monotonic()
            self.connected.set()
            try:
                for byte in self.request:
                    sock.sendall(bytes([byte]))
                    sock.settimeout(TRICKLE_EVERY)  # the wait between bytes doubles as a look for a hang-up
                    try:
                        if sock.recv(1024) == b"":
                            break
                    except socket.timeout:
                        pass
                    except OSError:
                        break
                    if self.stop.is_set():
                        return
            except OSError:  # a byte sent to a connection ingest has closed
                pass
            finally:
                sock.close()
            self.lifetimes.append(time.monotonic() - opened)


@pytest.mark.needs_quiet  # its assertion is a time: scripts/test runs it alone
def test_a_fresh_webhook_is_answered_within_5_s_while_16_connections_trickle(
    ingest: Ingest, catalog: str, broker: str
) -> None:
    stop = threading.Event()
    tricklers = [Trickler(ingest.url, stop) for _ in range(TRICKLERS)]
    for trickler in tricklers:
        trickler.start()
    try:
        for trickler in tricklers:
            assert trickler.connected.wait(10)
        time.sleep(1.0)  # every trickler is in the middle of its headers
        waits = []
        for n in range(4):  # over more than one trickle interval, so some are always mid-request
            body = wp_json_encode(make_order(7100 + n, lines=[VARIATION]))
            started = time.monotonic()
            response = requests.post(
                ingest.url + "/webhooks/woocommerce", data=body, timeout=30,
                headers={"Content-Type": "application/json", "Connection": "close", "X-WC-Webhook-Source": SITE + "/",
                         "X-WC-Webhook-Topic": "order.created", "X-WC-Webhook-Signature": sign(body, SECRET)},
            )
            waits.append(time.monotonic() - started)
            assert response.status_code == 200, response.text
            time.sleep(1.0)
        assert max(waits) < ANSWER_WITHIN, waits
        assert sorted(m.order_id for m in published(broker)) == [7100, 7101, 7102, 7103]
    finally:
        stop.set()
    for trickler in tricklers:
        trickler.join(timeout=TRICKLE_EVERY + 5)
    # Every trickling connection was cut by ingest's read deadline, not left to hold a thread.
    lifetimes = [t for trickler in tricklers for t in trickler.lifetimes]
    assert len(lifetimes) >= TRICKLERS
    assert max(lifetimes) < READ_DEADLINE_SECONDS + TRICKLE_EVERY + 1.0, lifetimes
    assert any(line.get("event") == "slow client cut off" for line in ingest.lines())
