"""The HTTP server both simulators run on."""
from __future__ import annotations

import sys
from http.server import ThreadingHTTPServer
from typing import Any


class SimulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # benchmarks open many connections at once

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hung up (a killed service, its own timeout) is normal here; anything else is a bug."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
