"""Ingest on gunicorn, configured in code.

WORKERS processes with THREADS threads each (gthread, with a read deadline
per request: services/ingest/worker.py). The workers' metrics are added up
through prometheus-client's multiprocess mode (services/ingest/metrics_directory.py),
so the number of processes is a free choice (see WORKERS).
The threads of a process share one RabbitMQ connection
(services/ingest/grouped_publisher.py) and a pool of PostgreSQL connections. SIGTERM stops accepting, lets
the requests in hand finish (GRACEFUL_SECONDS at most) and exits 0.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from shared.observability.logging import get_logger
from shared.settings import Settings

from services.ingest.worker import DeadlineThreadWorker

log = get_logger("ingest")

# Measured with bench/ingest.py on 2 cores shared with RabbitMQ and PostgreSQL:
# a second process answered 5-10 % more webhooks/s (within the noise) for about
# 80 MB more RSS, because the confirms, not the GIL, bound the rate once an
# order costs one broker and one database round trip. More processes just work
# (metrics are added up across them) where there are cores to spare.
WORKERS = 1
# At least as many threads as slow clients may be holding at once (each at most
# worker.READ_DEADLINE_SECONDS), so a webhook still finds a free one soon.
THREADS = 16
GRACEFUL_SECONDS = 8  # SIGTERM to exit well within 10 s
REQUEST_TIMEOUT_SECONDS = 30


def create_app(settings: Settings) -> Any:
    # Imported here, in the worker: gunicorn's master stays small (no SQLAlchemy, pika, pydantic models).
    from shared.shop_state.sites import configured_sites
    from services.ingest.app import IngestApp

    return IngestApp(
        secret=settings.secret("wc_webhook_secret"),
        database_url=settings.database_url,
        amqp_url=settings.amqp_url,
        sites=configured_sites(settings.wc_url, settings.wc_webhook_sources),
    )


class IngestServer(BaseApplication):
    """gunicorn with ingest's settings; `app_factory` builds the WSGI app in the worker.

    The factory is a parameter so that a benchmark can serve a minimal receiver
    with exactly the same server and settings (bench/minimal_receiver.py).
    """

    def __init__(self, settings: Settings, app_factory: Callable[[Settings], Any] = create_app) -> None:
        self.settings = settings
        self.app_factory = app_factory
        self.app: Any = None
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": [f"{self._host()}:{self.settings.ingest_port}"],
            "workers": WORKERS,
            "worker_class": DeadlineThreadWorker,
            "threads": THREADS,
            "graceful_timeout": GRACEFUL_SECONDS,
            "timeout": REQUEST_TIMEOUT_SECONDS,
            "keepalive": 5,
            "accesslog": None,  # the app logs one structured line per webhook
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "rewix-ingest",
            "control_socket_disable": True,
            "when_ready": self._when_ready,
            "post_worker_init": self._post_worker_init,
            "worker_exit": self._worker_exit,
            "child_exit": self._child_exit,
            "on_exit": self._on_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def _host(self) -> str:
        host = self.settings.ingest_host
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    def load(self) -> Any:
        # Runs in the worker, after the fork: connections are made there, lazily.
        self.app = self.app_factory(self.settings)
        return self.app

    @staticmethod
    def _when_ready(server: Any) -> None:
        for listener in server.LISTENERS:
            log.info("ingest listening", url=str(listener))

    def _post_worker_init(self, _worker: Any) -> None:
        if hasattr(self.app, "check_dependencies"):
            # Only a look: ingest starts (and answers 503 to order events) with the broker down.
            threading.Thread(target=self.app.check_dependencies, name="dependency-check", daemon=True).start()

    def _worker_exit(self, _server: Any, _worker: Any) -> None:
        close = getattr(self.app, "close", None)
        if close is not None:
            close()

    @staticmethod
    def _child_exit(_server: Any, worker: Any) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)

    @staticmethod
    def _on_exit(_server: Any) -> None:
        log.info("ingest stopped")


def run(settings: Settings, app_factory: Callable[[Settings], Any] = create_app) -> None:
    """Serve until SIGTERM/SIGINT; gunicorn exits the process with 0 after a graceful stop."""
    IngestServer(settings, app_factory).run()
