"""`python -m services.status_poller`: poll supplier statuses, apply them to the shop, catch up on the shop."""
from __future__ import annotations

from shared.observability.logging import get_logger
from shared.observability.worker import start_endpoints
from shared.service import start, wait_for_dependencies
from services.status_poller.service import REQUIRED, run


def main() -> None:
    settings, stop = start("status_poller", *REQUIRED)
    log = get_logger("status_poller")
    endpoints = start_endpoints(settings, "status_poller")
    try:
        wait_for_dependencies(settings, stop)
    except Exception:
        if stop.is_set():  # SIGTERM while still waiting: a clean stop
            log.info("status_poller stopped before its dependencies answered")
            return
        raise
    log.info("status_poller started")
    try:
        run(settings, stop)
    finally:
        if endpoints is not None:
            endpoints.close()
    log.info("status_poller stopped")


if __name__ == "__main__":
    main()
