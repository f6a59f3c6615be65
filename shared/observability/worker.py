"""Start-up of a worker's endpoints: what every worker process (supplier_sync, status_poller) calls first.

Served before the worker waits for its broker and database, so /healthz
answers at once and /readyz says what it is waiting for.
"""
from __future__ import annotations

from shared.db import ping as ping_database
from shared.observability.backlog import BacklogCollector
from shared.observability.health import HEALTH, CachedCheck
from shared.observability.logging import get_logger
from shared.observability.metrics import REGISTRY
from shared.observability.server import EndpointServer, serve
from shared.settings import Settings

log = get_logger(__name__)

_backlog_registered = False


def start_endpoints(settings: Settings, service: str) -> EndpointServer | None:
    """Readiness checks of the database, the backlog gauges, and the server on METRICS_HOST:METRICS_PORT."""
    global _backlog_registered
    HEALTH.add_check("database", CachedCheck(lambda: ping_database(settings.database_url)))
    if not _backlog_registered:
        REGISTRY.register(BacklogCollector(settings.database_url, settings.amqp_url))
        _backlog_registered = True
    port = settings.worker_metrics_port(service)
    try:
        return serve(port, host=settings.metrics_host)
    except OSError as exc:
        # The work matters more than its monitoring: keep working, and say so loudly
        # (Prometheus will show the target down, and compose's healthcheck fails).
        log.error("metrics endpoints not served: cannot listen", service=service,
                  metrics_host=settings.metrics_host, metrics_port=port, error=str(exc)[:200])
        return None
