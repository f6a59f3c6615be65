"""The workers' HTTP endpoints on METRICS_PORT: /healthz, /readyz, /metrics.

A small threaded stdlib server in a daemon thread: it answers while the
worker's own threads are busy or blocked, and costs nothing when
METRICS_PORT is 0 (no server at all).
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.observability.health import HEALTH, Health
from shared.observability.logging import get_logger
from shared.observability.metrics import REGISTRY

log = get_logger(__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    health: Health
    registry: CollectorRegistry


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        path = self.path.split("?", 1)[0]
        if path == "/healthz":
            status = self.server.health.liveness()
            self._send(200 if status.ok else 503, status.text().encode(), "text/plain; charset=utf-8")
        elif path == "/readyz":
            status = self.server.health.readiness()
            self._send(200 if status.ok else 503, status.text().encode(), "text/plain; charset=utf-8")
        elif path == "/metrics":
            self._send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        pass  # scrapes every few seconds would drown the worker's own log lines


class EndpointServer:
    def __init__(self, server: _Server) -> None:
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve(port: int, *, host: str = "127.0.0.1", health: Health = HEALTH,
          registry: CollectorRegistry = REGISTRY) -> EndpointServer | None:
    """Serve the three endpoints on `port` in the background; None (nothing served) when port is 0."""
    if not port:
        log.info("metrics endpoints off", metrics_port=0)
        return None
    server = _Server((host, port), _Handler)
    server.health = health
    server.registry = registry
    endpoint = EndpointServer(server)
    log.info("metrics endpoints listening", host=host, port=endpoint.port, paths="/healthz /readyz /metrics")
    return endpoint
