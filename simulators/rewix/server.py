"""HTTP front of the simulated Rewix platform: routing, auth, faults, answers.

/restful/… speaks the supplier protocol strictly (docs/rewix-api.md); /_control/…
is an unauthenticated JSON side door for tests and the demo (see control.py).
"""
from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from typing import Any, Callable
from urllib.parse import parse_qs, unquote, urlsplit

from simulators.http import SimulatorHTTPServer
from simulators.rewix.faults import FaultDecision
from simulators.rewix.state import SimulatorState, Unavailable, WindowExpired
from simulators.rewix.wire import BadRequest, parse_dropshipping_request, parse_lock_request, render_growing_order, render_order_statuses

MAX_BODY = 1 << 20
XML = "application/xml"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"
# What a platform behind a load balancer answers during maintenance: a 200, and not XML.
MAINTENANCE_PAGE = (
    "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>"
    "<body><h1>We are down for maintenance</h1><p>Back soon.</p></body></html>\n"
)
JSON = "application/json"


@dataclass(frozen=True)
class Route:
    endpoint: str  # name used by the call counters
    method: str
    pattern: re.Pattern[str]


ROUTES = [
    Route("lock", "POST", re.compile(r"^/restful/ghost/orders/sold/?$")),
    Route("locked", "GET", re.compile(r"^/restful/ghost/orders/dropshipping/locked/$")),
    Route("dropshipping", "POST", re.compile(r"^/restful/ghost/orders/0/dropshipping$")),
    Route("clientkey", "GET", re.compile(r"^/restful/ghost/clientorders/clientkey/([^/]+)/?$")),
    Route("serverkey", "GET", re.compile(r"^/restful/ghost/clientorders/serverkey/([^/]+)/?$")),
    Route("catalog", "GET", re.compile(r"^/restful/export/api/products\.json$")),
]


class Answer(Exception):
    """Raised anywhere in a handler to send this answer at once."""

    def __init__(self, status: int, body: bytes | str, content_type: str = TEXT, headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body.encode("utf-8") if isinstance(body, str) else body
        self.content_type = content_type
        self.headers = headers or {}


def _json_answer(data: Any, status: int = 200) -> Answer:
    return Answer(status, json.dumps(data), JSON)


class RewixHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every answer carries a Content-Length
    disable_nagle_algorithm = True  # else small answers wait on Nagle + delayed ACK
    timeout = 120  # an idle keep-alive connection frees its thread eventually
    server: "_HTTPServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        """Silent: per-request lines on stderr would drown the test and demo output."""

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    # --- plumbing -------------------------------------------------------------

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self._summary: Any = None
        self._drop = False
        try:
            body = self._read_body()
            if url.path.startswith("/_control/"):
                try:
                    answer = self._control(url.path, body)
                except (KeyError, TypeError, ValueError) as exc:
                    answer = _json_answer({"error": f"bad control request: {exc!r}"}, 400)
            elif url.path.startswith("/restful/"):
                answer = self._restful(url.path, parse_qs(url.query), body)
            else:
                answer = Answer(404, "not found")
        except Answer as raised:
            answer = raised
        if url.path.startswith("/restful/"):
            self.server.state.record(
                {"method": self.command, "path": url.path, "status": answer.status, "summary": self._summary, "at": time.time()}
            )
        self._send(answer)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise Answer(411, "Content-Length required")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise Answer(400, "bad Content-Length") from None
        if length > MAX_BODY:
            self.close_connection = True
            raise Answer(413, "body too large")
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        if self._drop:
            # Promise the whole body, deliver half, hang up: a connection lost mid-answer.
            self.wfile.write(answer.body[: len(answer.body) // 2])
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(answer.body)

    # --- /restful/ --------------------------------------------------------------

    def _restful(self, path: str, query: dict[str, list[str]], body: bytes) -> Answer:
        route, match = _route(path)
        state = self.server.state
        decision = state.begin_request(route.endpoint if route else "unknown")
        self._apply_faults(decision)
        if decision.refuse_account is not None or not self._authorized():
            if decision.refuse_account == 403:
                return Answer(403, "account not enabled for dropshipping")
            return Answer(401, "not authorized", headers={"WWW-Authenticate": 'Basic realm="rewix"'})
        if route is None or match is None:
            return Answer(404, "not found")
        if self.command != route.method:
            return Answer(405, "method not allowed", headers={"Allow": route.method})
        if route.endpoint != "catalog":
            self._check_xml_headers(body)
        handler: Callable[..., Answer] = getattr(self, f"_ep_{route.endpoint}")
        return handler(match, query, body)

    def _apply_faults(self, decision: FaultDecision) -> None:
        if decision.latency:
            time.sleep(decision.latency)
        self._drop = decision.drop
        if decision.maintenance:
            raise Answer(200, MAINTENANCE_PAGE, HTML)
        if decision.status == 429:
            raise Answer(429, "too many requests", headers={"Retry-After": f"{decision.retry_after:g}"})
        if decision.status is not None:
            raise Answer(decision.status, decision.body if decision.body is not None else f"simulated failure {decision.status}")

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        key, expected = self.server.credentials
        # Both compared, always, so timing reveals neither.
        return hmac.compare_digest(user.encode(), key.encode()) & hmac.compare_digest(password.encode(), expected.encode())

    def _check_xml_headers(self, body: bytes) -> None:
        accept = self.headers.get("Accept", "*/*")
        if not any(t in accept for t in ("xml", "*/*", "application/*")):
            raise Answer(406, "only application/xml is served")
        content_type = self.headers.get("Content-Type", "")
        if body and "xml" not in content_type:
            raise Answer(415, f"Content-Type must be application/xml, got {content_type!r}")

    def _ep_lock(self, match: re.Match[str], query: dict[str, list[str]], body: bytes) -> Answer:
        try:
            operations = parse_lock_request(body)
            self._summary = [[op.type, op.stock_id, op.quantity] for op in operations]
            failing = self.server.state.failing_status([op.stock_id for op in operations])
            if failing is not None:
                stock_id, status = failing
                return Answer(status, f"internal error on stock_id {stock_id}")
            order_id, rows = self.server.state.modify_growing_order(operations)
        except BadRequest as exc:
            return Answer(400, str(exc))
        return Answer(200, render_growing_order(order_id, rows), XML)

    def _ep_locked(self, match: re.Match[str], query: dict[str, list[str]], body: bytes) -> Answer:
        return Answer(200, render_growing_order(*self.server.state.growing_order()), XML)

    def _ep_dropshipping(self, match: re.Match[str], query: dict[str, list[str]], body: bytes) -> Answer:
        try:
            orders = parse_dropshipping_request(body)
            self._summary = [{"key": o.key, "items": {str(s): q for s, q in o.items.items()},
                              **({"autoConfirm": o.auto_confirm} if o.auto_confirm is not None else {})}
                             for o in orders]
            order_id, rows = self.server.state.create_orders(orders)
            # Created, then the connection is lost: the client cannot know it worked.
            self._drop = self._drop or self.server.state.take_drop_after_create()
        except BadRequest as exc:
            return Answer(400, str(exc))
        except Unavailable as exc:
            return Answer(412, str(exc))
        return Answer(200, render_growing_order(order_id, rows), XML)

    def _ep_clientkey(self, match: re.Match[str], query: dict[str, list[str]], body: bytes) -> Answer:
        key = unquote(match.group(1))
        self._summary = {"key": key}
        if self.server.state.clientkey_fails(key):
            return Answer(500, "java.lang.NullPointerException")
        return _status_answer(self.server.state.order_status(key=key))

    def _ep_serverkey(self, match: re.Match[str], query: dict[str, list[str]], body: bytes) -> Answer:
        self._summary = {"order_id": match.group(1)}
        if not match.group(1).isdigit():
            return Answer(404, "not found")
        return _status_answer(self.server.state.order_status(order_id=int(match.group(1))))

    def _ep_catalog(self, match: re.Match[str], query: dict[str, list[str]], body: bytes) -> Answer:
        if not query.get("acceptedlocales", [""])[0]:
            return Answer(400, "acceptedlocales is mandatory")
        since_text = query.get("since", [None])[0]
        self._summary = {"since": since_text}
        since = None
        if since_text:
            try:
                since = datetime.fromisoformat(since_text.replace("Z", "+00:00"))
            except ValueError:
                return Answer(400, f"since {since_text!r} is not ISO-8601")
            if since.tzinfo is None:
                since = since.replace(tzinfo=timezone.utc)
        try:
            return _json_answer(self.server.state.catalog_export(since))
        except WindowExpired as exc:
            return Answer(412, str(exc))

    # --- /_control/ ------------------------------------------------------------------

    def _control(self, path: str, body: bytes) -> Answer:
        state = self.server.state
        if self.command == "GET" and path == "/_control/state":
            return _json_answer(state.snapshot())
        if self.command == "GET" and path == "/_control/catalog":
            return _json_answer({"availability": state.availability()})
        if self.command != "POST":
            return _json_answer({"error": "not found"}, 404)
        spec = _json_body(body)
        if path == "/_control/reset":
            state.reset()
        elif path == "/_control/catalog":
            if "seed_products" in spec:
                state.seed_products(int(spec["seed_products"]), int(spec.get("availability", 1000)))
            state.upsert_models(list(spec.get("models", [])))
        elif path == "/_control/faults":
            state.configure_faults(spec)
        elif path == "/_control/faults/clear":
            state.clear_faults()
        elif path == "/_control/account":
            return _json_answer(state.configure_account(spec))
        elif path == "/_control/growing_order":
            # A person adds units to the growing order on the supplier's site, outside the API.
            locked = state.lock_by_hand({int(s): int(q) for s, q in dict(spec.get("lock", {})).items()})
            return _json_answer({"models": {str(s): q for s, q in sorted(locked.items())}})
        elif m := re.fullmatch(r"/_control/orders/(\d+)/status", path):
            order = state.set_status(int(m.group(1)), spec)
            return _json_answer(order) if order else _json_answer({"error": "no such order"}, 404)
        else:
            return _json_answer({"error": "not found"}, 404)
        return _json_answer({"ok": True})


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        spec = json.loads(body or b"{}")
    except ValueError as exc:
        raise _json_answer({"error": f"body is not JSON: {exc}"}, 400) from None
    if not isinstance(spec, dict):
        raise _json_answer({"error": "body must be a JSON object"}, 400)
    return spec


def _route(path: str) -> tuple[Route | None, re.Match[str] | None]:
    for route in ROUTES:
        match = route.pattern.match(path)
        if match:
            return route, match
    return None, None


def _status_answer(order: dict[str, object] | None) -> Answer:
    if order is None:
        return Answer(404, "order not found")
    return Answer(200, render_order_statuses([order]), XML)


class _HTTPServer(SimulatorHTTPServer):
    state: SimulatorState
    credentials: tuple[str, str]


class SimulatorServer:
    """A running simulator: `.url`, `.state`, `.stop()`."""

    def __init__(self, host: str, port: int, api_key: str, password: str, state: SimulatorState | None = None) -> None:
        self._httpd = _HTTPServer((host, port), RewixHandler)
        self._httpd.state = state or SimulatorState()
        self._httpd.credentials = (api_key, password)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def state(self) -> SimulatorState:
        return self._httpd.state

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> "SimulatorServer":
        self._thread = threading.Thread(target=self.serve_forever, name="rewix-simulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def start_in_thread(
    host: str = "127.0.0.1", port: int = 0, api_key: str = "demo-key", password: str = "demo-password"
) -> SimulatorServer:
    """A simulator serving from a background thread, for tests: remember to .stop() it."""
    return SimulatorServer(host, port, api_key, password).start()
