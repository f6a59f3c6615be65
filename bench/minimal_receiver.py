"""`python -m bench.minimal_receiver`: the least any Python webhook receiver does, on ingest's server.

It reads the body, checks X-WC-Webhook-Signature with the same function as
ingest, parses the JSON and answers 200: no database, no broker. It is
served by services.ingest.server with the very settings ingest runs with
(workers, threads, timeouts), so bench/ingest.py can measure what ingest's
own work costs on top of HTTP, HMAC and JSON on this machine.

Environment: WC_WEBHOOK_SECRET, INGEST_HOST, INGEST_PORT (as ingest).
"""
from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from shared.clients.shop.signature import verify
from shared.observability.logging import configure_logging
from shared.settings import Settings, load_settings, require

from services.ingest.server import run


def minimal_app(settings: Settings) -> Callable[..., list[bytes]]:
    secret = settings.secret("wc_webhook_secret")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO") == "/readyz":
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "2")])
            return [b"{}"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        if not verify(body, environ.get("HTTP_X_WC_WEBHOOK_SIGNATURE"), secret):
            start_response("401 Unauthorized", [("Content-Length", "0")])
            return [b""]
        order = json.loads(body)
        answer = json.dumps({"status": "received", "id": order.get("id")}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
        return [answer]

    return app


def main() -> None:
    settings = require(load_settings(), "WC_WEBHOOK_SECRET")
    configure_logging(settings.log_level, settings.log_format)
    run(settings, minimal_app)


if __name__ == "__main__":
    main()
