"""ingest as a real process for the integration tests: `python -m services.ingest` with its log in a
file, the webhook secret and site it is configured with, the supplier products the tests order, and
what reached the broker. The fixtures that start it (`ingest`, once per module) and fill the product
map (`catalog`) are in conftest.py."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import requests

from shared.clients.shop.signature import sign
from shared.messaging import topology
from shared.messaging.messages import parse_order_line
from simulators.shop.php_json import wp_json_encode
from tests.conftest import TEST_RETRY_DELAYS, drain

ROOT = Path(__file__).resolve().parents[2]
# As stored in WooCommerce: it signs with the entities decoded ("&amp;" -> "&", "&#039;" -> "'").
SECRET = "wh-s3cr&amp;t&#039;42-long-enough-to-be-accepted"
DECODED_SECRET = "wh-s3cr&t'42-long-enough-to-be-accepted"
MAX_BODY = 1024 * 1024
# The shop's site (WC_URL); WooCommerce sends home_url('/') as X-WC-Webhook-Source.
SITE = "https://shop.example.com"
LINES = topology.ORDER_LINES.name
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

# Supplier products of these tests.
VARIATION = {"product_id": 2101, "variation_id": 2104, "quantity": 2, "sku": "SNK-GRÜN-42",
             "name": "Sneaker „Grünwald“ - 42", "price": "89.90"}
SIMPLE = {"product_id": 3307, "variation_id": 0, "quantity": 1, "sku": "TEE-0001",
          "name": "T-shirt <Basic> & co.", "price": "19.50"}
BY_CODE = {"product_id": 4400, "variation_id": 4401, "quantity": 3, "sku": "JKT-ÉTÉ-M",
           "name": "Jacket Été - M", "price": "120.00"}
BY_BARCODE = {"product_id": 4500, "variation_id": 0, "quantity": 1, "sku": "8056789012345",
              "name": "Scarf", "price": "25.00"}
SHOP_OWN = {"product_id": 9100, "variation_id": 0, "quantity": 5, "sku": "GIFT-CARD",
            "name": "Gift card", "price": "50.00"}
STOCK = {2101: 70001, 3307: 70002, 4400: 70003, 4500: 70004}


class Ingest:
    """A running `python -m services.ingest` with its log in a file."""

    def __init__(self, **env: str) -> None:
        self.log_file = tempfile.NamedTemporaryFile(prefix="ingest-", suffix=".log", delete=False)
        full_env = {
            **os.environ,
            "WC_WEBHOOK_SECRET": SECRET,
            "WC_URL": SITE,
            "SYNC_RETRY_DELAYS": ",".join(str(d) for d in TEST_RETRY_DELAYS),
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": "0",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
            **env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"],
            cwd=ROOT, env=full_env, stdout=self.log_file, stderr=subprocess.STDOUT,
        )
        try:
            self.url = self._wait_listening()
        except BaseException:
            self.close()
            raise

    def _wait_listening(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            for line in self.lines():
                if line.get("event") == "ingest listening":
                    return line["url"]
            if self.process.poll() is not None:
                raise AssertionError(f"ingest exited with {self.process.returncode}: {self.text()}")
            time.sleep(0.05)
        raise AssertionError(f"ingest did not start: {self.text()}")

    def text(self) -> str:
        return Path(self.log_file.name).read_text(encoding="utf-8", errors="replace")

    def lines(self) -> list[dict[str, Any]]:
        out = []
        for raw in self.text().splitlines():
            try:
                out.append(json.loads(raw))
            except ValueError:
                out.append({"raw": raw})
        return out

    def post(self, body: bytes, topic: str | None = "order.updated", *, signed: bool = True,
             headers: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        # WordPress speaks HTTP/1.0: one connection per delivery.
        all_headers = {"Content-Type": "application/json", "User-Agent": "WooCommerce/9.9.0 Hookshot (WordPress/6.8)",
                       "Connection": "close"}
        if topic is not None:
            resource, _, event = topic.partition(".")
            all_headers |= {
                "X-WC-Webhook-Source": SITE + "/",
                "X-WC-Webhook-Topic": topic,
                "X-WC-Webhook-Resource": resource,
                "X-WC-Webhook-Event": event,
                "X-WC-Webhook-ID": "7",
                "X-WC-Webhook-Delivery-ID": hashlib.md5(str(time.time()).encode()).hexdigest(),
            }
        if signed:
            all_headers["X-WC-Webhook-Signature"] = sign(body, SECRET)
        all_headers |= headers or {}
        return requests.post(self.url + "/webhooks/woocommerce", data=body, headers=all_headers, timeout=15, **kw)

    def order(self, order: dict[str, Any], topic: str = "order.updated") -> requests.Response:
        return self.post(wp_json_encode(order), topic)

    def get(self, path: str) -> requests.Response:
        return requests.get(self.url + path, headers={"Connection": "close"}, timeout=15)

    def metric(self, name: str, **labels: str) -> float:
        wanted = name + ("{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}" if labels else "")
        for line in self.get("/metrics").text.splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def stop(self) -> int:
        """SIGTERM; it must exit 0 within STOP_TIMEOUT seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("ingest did not stop within 10 s of SIGTERM") from None
        finally:
            self.log_file.close()
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log_file.close()
        Path(self.log_file.name).unlink(missing_ok=True)


def published(amqp_url: str) -> list[Any]:
    return [parse_order_line(body) for _props, body in drain(amqp_url, LINES)]


def serving(**env: str) -> Iterator[Ingest]:
    """An ingest for a module's tests (a fixture's body): stopped cleanly, exit 0, once they are done."""
    server = Ingest(**env)
    yield server
    try:
        assert server.stop() == 0
    finally:
        server.close()
