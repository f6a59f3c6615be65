"""What every benchmark needs: a scratch database and vhost, services as subprocesses, figures.

Each measured run gets a database and a RabbitMQ vhost of its own, created
and removed by the dev stack (devstack/scratch.py) even when the run fails,
waiting out a PostgreSQL or RabbitMQ restart. Services are `python -m ...`
subprocesses in their own process group (devstack/processes.py), with their
output in a log file; every one still running when the benchmark ends
(normally, by an exception or by SIGTERM/SIGINT) is stopped.
"""
from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pika

from devstack import processes, scratch
from devstack.processes import ROOT, STOP_TIMEOUT, install_cleanup, stop_all  # noqa: F401 - part of this API
from devstack.scratch import (  # noqa: F401 - part of this API
    DEFAULT_AMQP_URL, DEFAULT_DATABASE_URL, RESTART_PATIENCE, base_amqp_url, base_database_url, unique_name,
)
from devstack.stack import service_env as _service_env
from devstack.waiting import wait_until  # noqa: F401 - part of this API
from shared.observability.logging import configure_logging

# --- scratch database and vhost ------------------------------------------------------------


@contextmanager
def scratch_database(prefix: str = "bench") -> Iterator[str]:
    """A new, migrated database; dropped (with whatever is still connected) on exit.

    Open your own engine on it (`create_engine(normalise_url(url))`) rather than
    shared.db's cached one, and dispose of it before the end.
    """
    with scratch.scratch_database(prefix) as url:
        yield url


@contextmanager
def scratch_vhost(prefix: str = "bench") -> Iterator[str]:
    """A new RabbitMQ vhost the base URL's user may use; deleted on exit."""
    with scratch.scratch_vhost(prefix) as url:
        yield url


@contextmanager
def quiet_scratch(prefix: str) -> Iterator[tuple[str, str]]:
    """(database URL, AMQP URL) of a scratch database and vhost, for a benchmark that starts nothing itself.

    Logs below WARNING are dropped, so the figures are not drowned (and the
    logging costs nothing measurable); what the run started is stopped on exit
    or on Ctrl-C.
    """
    configure_logging("WARNING", "console")
    install_cleanup()
    with scratch_database(prefix) as database_url, scratch_vhost(prefix) as amqp_url:
        yield database_url, amqp_url


def queue_info(amqp_url: str, queue: str) -> tuple[int, int] | None:
    """(ready messages, consumers) of a queue, or None while it does not exist."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        try:
            ok = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return None
        return ok.method.message_count, ok.method.consumer_count
    finally:
        if connection.is_open:
            connection.close()


# --- services as subprocesses ---------------------------------------------------------------


class Service(processes.Service):
    """A `python -m module` subprocess, started as soon as it is made (devstack.processes.Service)."""

    def __init__(self, name: str, module: str, env: dict[str, str], log_dir: Path, args: Sequence[str] = ()) -> None:
        super().__init__(name, module, env, log_dir, args)
        self.start()


def log_directory(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-"))


def service_env(**values: str) -> dict[str, str]:
    """The environment for a service: this one's, less settings that must not leak in, plus `values`.

    No supplier request budget unless `values` sets one (the rush does): the other benchmarks
    measure what the system can do against a supplier without a limit, as they state."""
    return _service_env(("REWIX_", "WC_", "INGEST_", "SUPPLIER_REQUESTS_PER_SECOND"),
                        **{"SUPPLIER_REQUESTS_PER_SECOND": "0", **values})


# --- simulators ------------------------------------------------------------------------------


def start_rewix_simulator(log_dir: Path, api_key: str, password: str, name: str = "rewix-simulator") -> tuple[Service, str]:
    """`python -m simulators.rewix --port 0`; returns the service and its base URL."""
    service = Service(
        name,
        "simulators.rewix",
        service_env(REWIX_SIM_API_KEY=api_key, REWIX_SIM_PASSWORD=password),
        log_dir,
        args=["--host", "127.0.0.1", "--port", "0"],
    )
    return service, service.announced_url()


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"
