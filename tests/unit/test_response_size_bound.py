"""Answers of the supplier and the shop are read up to a bound: beyond it, a clear error, and
not one byte more is kept in memory (shared/clients/http_body.py)."""
from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from shared.clients.http_body import BodyTooLarge, read_bounded
from shared.clients.rewix import client as rewix_client
from shared.clients.rewix.client import RewixClient
from shared.clients.shop import client as shop_client
from shared.clients.shop.client import WooCommerceClient
from shared.failures.errors import TransientError

LIMIT = 64 * 1024


class Endless(BaseHTTPRequestHandler):
    """Answers every request with 200 and the body the server was told to send."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        body, headers, chunked = self.server.answer  # type: ignore[attr-defined]
        self.send_response(200)
        for name, value in headers.items():
            self.send_header(name, value)
        if chunked:  # no Content-Length: the size shows only while reading
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for start in range(0, len(body), 16384):
                    part = body[start:start + 16384]
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading, as it should
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Endless)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_bound_is_refused_and_one_within_is_kept(server, chunked: bool) -> None:
    server.answer = (b"x" * (LIMIT + 1), {}, chunked)
    with pytest.raises(BodyTooLarge, match="larger than 65536 bytes"):
        read_bounded(requests.get(url(server), stream=True, timeout=5), LIMIT)
    server.answer = (b"x" * LIMIT, {}, chunked)
    response = requests.get(url(server), stream=True, timeout=5)
    assert read_bounded(response, LIMIT) == b"x" * LIMIT and response.content == b"x" * LIMIT


def test_a_small_gzip_that_inflates_past_the_bound_is_refused(server) -> None:
    server.answer = (gzip.compress(b"0" * (4 * LIMIT)), {"Content-Encoding": "gzip"}, True)
    with pytest.raises(BodyTooLarge):
        read_bounded(requests.get(url(server), stream=True, timeout=5), LIMIT)


def test_the_supplier_client_says_the_answer_is_too_large(server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rewix_client, "MAX_BODY", LIMIT)
    server.answer = (b"<x>" + b" " * (2 * LIMIT) + b"</x>", {"Content-Type": "application/xml"}, True)
    client = RewixClient(url(server), "key", "password")
    with pytest.raises(TransientError, match=r"GET /restful/ghost/orders/dropshipping/locked/: the answer is "
                                             r"larger than 65536 bytes: not read"):
        client.get_growing_order()
    client.close()


def test_the_shop_client_says_the_answer_is_too_large(server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shop_client, "MAX_BODY", LIMIT)
    server.answer = (b"[" + b" " * (2 * LIMIT) + b"]", {"Content-Type": "application/json"}, False)
    client = WooCommerceClient(url(server), "ck_x", "cs_x")
    with pytest.raises(TransientError, match=r"shop GET /orders/7: the answer is larger than 65536 bytes"):
        client.get_order(7)
    # Within the bound the same client reads as before.
    server.answer = (b'{"id": 7}', {"Content-Type": "application/json"}, False)
    assert client.get_order(7) == {"id": 7}
