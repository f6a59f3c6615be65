"""What every long-running service does at start: settings, logging, signals, waiting for dependencies."""
from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from shared.db import ping as ping_database
from shared.messaging.amqp import connect, wait_for
from shared.observability.logging import configure_logging, get_logger
from shared.settings import Settings, load_settings, require


def start(service: str, *required: str) -> tuple[Settings, threading.Event]:
    """Load and check settings, configure logging, and turn SIGTERM/SIGINT into a stop event."""
    settings = require(load_settings(), *required)
    configure_logging(settings.log_level, settings.log_format)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        get_logger(service).info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return settings, stop


def wait_for_dependencies(settings: Settings, stop: threading.Event) -> None:
    """Wait (with backoff and a log line) for the database and the broker to answer."""
    wait_for("database", lambda: ping_database(settings.database_url), stop)
    wait_for("rabbitmq", lambda: connect(settings.amqp_url).close(), stop)


def run_until_stopped(stop: threading.Event, *loops: Callable[[], None]) -> None:
    """Run each loop in its own thread; return when all have ended after `stop`."""
    threads = [threading.Thread(target=loop, name=getattr(loop, "__name__", "loop"), daemon=True) for loop in loops]
    for thread in threads:
        thread.start()
    while any(t.is_alive() for t in threads):
        for thread in threads:
            thread.join(timeout=0.2)
