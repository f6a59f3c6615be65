"""What every benchmark needs: a scratch database and vhost, services as subprocesses, figures.

Each measured run gets a database and a RabbitMQ vhost of its own, created
here and removed at the end even when the run fails. Services are started as
`python -m ...` subprocesses in their own process group, with their output in
a log file; every one still running when the benchmark ends (normally, by an
exception or by SIGTERM/SIGINT) is stopped. Creating and removing the scratch
database and vhost waits out a PostgreSQL or RabbitMQ restart of up to
RESTART_PATIENCE seconds, so nothing is left behind by a restart elsewhere.
"""
from __future__ import annotations

import atexit
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pika
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from shared.db import normalise_url
from shared.db.migrate import upgrade

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
STOP_TIMEOUT = 15.0
# Seconds to keep trying to create or remove a scratch database or vhost while
# PostgreSQL or RabbitMQ is (re)starting (other work on the machine may restart them).
RESTART_PATIENCE = 30.0


def base_database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def base_amqp_url() -> str:
    return os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


# --- scratch database and vhost ------------------------------------------------------------


@contextmanager
def scratch_database(prefix: str = "bench") -> Iterator[str]:
    """A new, migrated database; dropped (with whatever is still connected) on exit.

    Open your own engine on it (`create_engine(normalise_url(url))`) rather than
    shared.db's cached one, and dispose of it before the end.
    """
    parsed = urllib.parse.urlsplit(normalise_url(base_database_url()))
    name = unique_name(prefix)
    admin = create_engine(parsed._replace(path="/postgres").geturl(), isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        _patiently(admin, f'CREATE DATABASE "{name}"')
        try:
            url = parsed._replace(path=f"/{name}").geturl()
            upgrade(url)
            yield url
        finally:
            _patiently(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


def _patiently(admin: Any, statement: str) -> None:
    """Run one administrative statement, trying again for a while if PostgreSQL is (re)starting."""
    deadline = time.monotonic() + RESTART_PATIENCE
    while True:
        try:
            with admin.connect() as c:
                c.execute(text(statement))
            return
        except OperationalError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1.0)


NO_SUCH_VHOST = 65  # rabbitmqctl's exit status for a vhost that does not exist


def _rabbitmqctl(*args: str, ok: tuple[int, ...] = (0,)) -> None:
    """Run rabbitmqctl, trying again for a while when the broker does not answer."""
    deadline = time.monotonic() + RESTART_PATIENCE
    while True:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=60)
        if done.returncode in ok:
            return
        if time.monotonic() >= deadline:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} exited with {done.returncode}: {detail[-1] if detail else ''}")
        time.sleep(1.0)


@contextmanager
def scratch_vhost(prefix: str = "bench") -> Iterator[str]:
    """A new RabbitMQ vhost the base URL's user may use; deleted on exit."""
    parsed = urllib.parse.urlsplit(base_amqp_url())
    user = urllib.parse.unquote(parsed.username or "guest")
    vhost = unique_name(prefix)
    try:
        _rabbitmqctl("add_vhost", vhost)
        _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield parsed._replace(path="/" + urllib.parse.quote(vhost, safe="")).geturl()
    finally:
        _rabbitmqctl("delete_vhost", vhost, ok=(0, NO_SUCH_VHOST))


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

_running: set["Service"] = set()
_running_lock = threading.Lock()


class Service:
    """A `python -m module` subprocess in its own process group, its output in `log_path`."""

    def __init__(self, name: str, module: str, env: dict[str, str], log_dir: Path, args: Sequence[str] = ()) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        with _running_lock:
            _running.add(self)

    def text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def wait_for_output(self, find: Callable[[str], Any], timeout: float = 20.0) -> Any:
        """Poll the log until `find(line)` returns something truthy for a line; return that."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.text().splitlines():
                found = find(line)
                if found:
                    return found
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail()}")
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not start within {timeout:.0f} s:\n{self.tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL to the whole group if it does not exit in time."""
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGTERM)
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            # Whatever it left behind in its group (gunicorn's worker) goes with it.
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()
        with _running_lock:
            _running.discard(self)
        return self.process.returncode


def stop_all() -> None:
    with _running_lock:
        services = list(_running)
    for service in services:
        service.stop(timeout=5)


def install_cleanup() -> None:
    """Stop every started service at exit, and turn SIGTERM into a normal exit that does so."""
    atexit.register(stop_all)

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


def log_directory(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{prefix}-"))


def service_env(**values: str) -> dict[str, str]:
    """The environment for a service: this one's, less settings that must not leak in, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REWIX_", "WC_", "INGEST_"))}
    env.update({"PYTHONUNBUFFERED": "1", "LOG_FORMAT": "json"})
    env.update(values)
    return env


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
    url = service.wait_for_output(lambda line: line.startswith("listening on ") and line.split()[-1])
    return service, url


# --- figures ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def fmt_ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"
