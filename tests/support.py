"""Small tools several test modules need: waiting for a condition, a cuttable TCP proxy, a webhook receiver,
a requests session that records what the shop client asked, a sent order recorded as supplier_sync records it,
and the traffic recorded from a real WooCommerce 9.2.5 shop."""
from __future__ import annotations

import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests
from sqlalchemy import Connection, text

from devstack.processes import free_port  # noqa: F401 - the tests' free_port is the dev stack's
from devstack.waiting import wait_until  # noqa: F401 - the tests' wait_until is the dev stack's


class TcpProxy:
    """127.0.0.1:<port> forwarded to a server; `cut()` refuses and drops every connection until
    `restore()`, on the same port: a server unreachable for a while, without stopping it.
    `stall()` keeps the connections open but forwards nothing until `flow()`: a server that hangs."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._flowing = threading.Event()
        self._flowing.set()
        self.restore()

    def stall(self) -> None:
        self._flowing.clear()

    def flow(self) -> None:
        self._flowing.set()

    def url_for(self, url: str) -> str:
        """`url` with its host and port replaced by the proxy's."""
        parsed = urllib.parse.urlsplit(url)
        credentials = parsed.netloc.rpartition("@")[0]
        netloc = f"127.0.0.1:{self.port}"
        return parsed._replace(netloc=f"{credentials}@{netloc}" if credentials else netloc).geturl()

    def restore(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # close() alone does not wake a thread blocked in accept() on Linux: shutdown() does.
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class WebhookReceiver:
    """A tiny webhook endpoint that records every request (headers, body) and answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks/woocommerce"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def reset(self) -> None:
        """Forget what was received and answer 200 again (between tests sharing the receiver)."""
        self.requests.clear()
        self.status = 200

    def pings(self) -> list[bytes]:
        """Bodies of the deliveries that carry no topic: WooCommerce's ping on creating a webhook."""
        return [body for headers, body in self.requests if "X-WC-Webhook-Topic" not in headers]

    def events(self) -> list[str]:
        """Topics of the deliveries that carry one, in the order received."""
        return [headers["X-WC-Webhook-Topic"] for headers, _ in self.requests if "X-WC-Webhook-Topic" in headers]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class RecordingSession(requests.Session):
    """Records every request the WooCommerce client sends: its path below /wc/v3 and its query parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.calls.append((url.rsplit("/wc/v3", 1)[-1], dict(kwargs.get("params") or {})))
        return super().request(method, url, *args, **kwargs)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]

    @property
    def pages(self) -> list[str]:
        """The `page` parameter of each request, as text ("None" where there was none)."""
        return [str(params.get("page")) for _, params in self.calls]


def record_sent_order(connection: Connection, shop_order_id: int, key: str, supplier_order_id: int,
                      status: int) -> int:
    """A paid shop order and its supplier order as supplier_sync records a send; returns the supplier_orders id."""
    connection.execute(
        text("INSERT INTO shop_orders (id, number, status, deleted, customer_note, supplier_line_ids)"
             " VALUES (:id, :number, 'processing', false, '', '[]')"),
        {"id": shop_order_id, "number": key},
    )
    return connection.execute(
        text("INSERT INTO supplier_orders (shop_order_id, key, supplier_order_id, status, final, cancelled_in_shop)"
             " VALUES (:shop, :key, :sid, :status, false, false) RETURNING id"),
        {"shop": shop_order_id, "key": key, "sid": supplier_order_id, "status": status},
    ).scalar_one()


# The order meta status_poller's meta loop writes (shared/orders/sync_status.py).
SYNC_META_KEYS = ("rewix_sync_status", "rewix_supplier_order")


def is_sync_meta_write(write: dict[str, Any]) -> bool:
    """A shop simulator write (ShopState.writes) that only set the sync status meta of the order."""
    body = write.get("body") or {}
    meta = body.get("meta_data") or []
    return (write.get("kind") == "update" and set(body) == {"meta_data"}
            and bool(meta) and all(m.get("key") in SYNC_META_KEYS for m in meta))

