"""Test infrastructure: a database and a RabbitMQ vhost of this run's own.

URLs come from DATABASE_URL / AMQP_URL when set, else from testcontainers when
a Docker engine answers, else from the local defaults. Each run creates a
uniquely named database and vhost and removes them at the end (devstack/scratch.py).
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pika
import pika.exceptions
import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from xdist.scheduler import LoadFileScheduling

from devstack.scratch import scratch_database, scratch_vhost
from shared.db import normalise_url
from shared.db.migrate import upgrade
from shared.db.models import Base
from shared.messaging import topology

# The services the tests start spend no shared supplier request budget: their tests are about
# delivery, recovery and exactness, at the simulator's pace. The budget's own tests
# (test_supplier_rush.py) and the rush benchmark set SUPPLIER_REQUESTS_PER_SECOND themselves.
os.environ.setdefault("SUPPLIER_REQUESTS_PER_SECOND", "0")

# pytest rewrites os.environ (PYTEST_CURRENT_TEST) at each phase of a test while the simulators' and the
# harnesses' threads run on, and requests looks for proxies by iterating os.environ unless the address
# is in NO_PROXY: a thread could meet a key deleted mid-iteration (KeyError) and die. Every address the
# tests call is local.
_LOCAL = "127.0.0.1,localhost"
for _name in ("no_proxy", "NO_PROXY"):
    os.environ[_name] = f"{os.environ[_name]},{_LOCAL}" if os.environ.get(_name) else _LOCAL

# Per process: each pytest-xdist worker has a database and a vhost of its own.
RUN_ID = uuid.uuid4().hex[:8]
# The retry schedule the tests give the workers: as many attempts as production's, growing, but
# 15 s in all, since several tests wait the whole schedule out (a message dead-lettered at its end).
TEST_RETRY_DELAYS = [1, 2, 3, 4, 5]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--alone", choices=("with", "without", "only"), default="with",
        help="the tests that must run alone (marked stops_servers or needs_quiet): run them too (default), "
             "leave them out (the parallel run of scripts/test), or run only them (its serial run afterwards)",
    )


# Tests that scripts/test runs after the parallel run, one at a time: those that stop a real server
# (every test beside them would break) and those whose assertion is how promptly something answers
# (beside three other workers on two cores, the answer waits for the CPU, not for what is tested).
RUN_ALONE = ("stops_servers", "needs_quiet")


# The fault tier's modules each run several services, a burst of orders and a fault: two of them at
# once would compete for the two cores and, with their services' connection pools, come close to
# PostgreSQL's 100 connections. With --dist loadfile they form one unit of work, so one worker runs
# them one after another while the others share out the remaining modules.
FAULT_TIER = "tests/faults/"


class ModulesWithTheFaultTierTogether(LoadFileScheduling):
    """pytest-xdist's --dist loadfile (a module stays on one worker), the fault tier as one module."""

    def _split_scope(self, nodeid: str) -> str:
        module = super()._split_scope(nodeid)
        return FAULT_TIER if module.startswith(FAULT_TIER) else module


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") == "loadfile":
        return ModulesWithTheFaultTierTogether(config, log)
    return None  # another --dist: pytest-xdist's own


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The unit tests last: they take seconds, and fill in the end of a parallel run while the
    # workers finish their long modules, instead of leaving a long module to start last.
    items.sort(key=lambda item: item.nodeid.startswith("tests/unit/"))
    choice = config.getoption("--alone")
    if choice == "with":
        return
    keep_alone = choice == "only"
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        alone = any(item.get_closest_marker(marker) is not None for marker in RUN_ALONE)
        (kept if alone == keep_alone else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def with_database_retry(action, timeout: float = 60.0):
    """Run `action`, retrying while PostgreSQL restarts (the fault tests restart it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0


@pytest.fixture(scope="session")
def _containers() -> Iterator[dict[str, str]]:
    """Only used when neither URL is given and Docker exists."""
    urls: dict[str, str] = {}
    started = []
    if ("DATABASE_URL" not in os.environ or "AMQP_URL" not in os.environ) and _docker_available():
        from testcontainers.postgres import PostgresContainer
        from testcontainers.rabbitmq import RabbitMqContainer

        if "DATABASE_URL" not in os.environ:
            pg = PostgresContainer("postgres:15").start()
            started.append(pg)
            urls["db"] = pg.get_connection_url()
        if "AMQP_URL" not in os.environ:
            mq = RabbitMqContainer("rabbitmq:3.12").start()
            started.append(mq)
            urls["amqp"] = f"amqp://guest:guest@{mq.get_container_host_ip()}:{mq.get_exposed_port(5672)}/%2F"
    yield urls
    for container in started:
        container.stop()


@pytest.fixture(scope="session")
def database_url(_containers: dict[str, str]) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL") or _containers.get("db") or "postgresql://postgres@127.0.0.1:5432/postgres"
    with scratch_database(name=f"rewix_test_{RUN_ID}", base_url=base, migrate=False) as url:
        with_database_retry(lambda: upgrade(url))
        yield url
        from shared.db import get_engine

        get_engine.cache_clear()
        _engine(url).dispose()


@pytest.fixture(scope="session")
def amqp_url(_containers: dict[str, str]) -> Iterator[str]:
    base = os.environ.get("AMQP_URL") or _containers.get("amqp") or "amqp://guest:guest@127.0.0.1:5672/%2F"
    with scratch_vhost(name=f"rewix_test_{RUN_ID}", base_url=base) as url:
        yield url


@functools.cache
def _engine(database_url: str) -> Engine:
    # One per database for the whole run: a test's fixture then costs no new PostgreSQL backend.
    return create_engine(normalise_url(database_url), pool_pre_ping=True, pool_size=1)


@functools.cache
def _emptying_statement(database_url: str) -> str:
    """DELETE every table's rows, children first, and restart the sequences the tables own.

    Not TRUNCATE: the tables of a test hold a few rows, and truncating 25 tables makes PostgreSQL create
    their files afresh, about 0.1 s of its CPU for every test. The sequences no table owns
    (product_lookup_version, reservation_changes) only ever grow, as TRUNCATE left them too.
    """
    tables = Base.metadata.sorted_tables
    with _engine(database_url).connect() as connection:
        sequences = [row[0] for row in connection.execute(text(
            "SELECT pg_get_serial_sequence(quote_ident(table_name), column_name) AS sequence"
            " FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND pg_get_serial_sequence(quote_ident(table_name), column_name) IS NOT NULL"
            " AND table_name = ANY(:tables)"
        ), {"tables": [t.name for t in tables]})]
    return "; ".join([f'DELETE FROM "{t.name}"' for t in reversed(tables)]
                     + [f"ALTER SEQUENCE {sequence} RESTART" for sequence in sequences])


@pytest.fixture
def db(database_url: str) -> str:
    """A database URL with every table emptied."""

    def empty() -> None:
        with _engine(database_url).begin() as c:
            c.execute(text(_emptying_statement(database_url)))

    with_database_retry(empty)
    return database_url


def all_queue_names(delays: list[int]) -> list[str]:
    names = []
    for q in topology.WORK_QUEUES:
        names += [q.name, q.dead] + [q.wait(d) for d in sorted(set(delays))]
    return names


def _declare_topology(channel: Any) -> None:
    topology.declare(channel)
    for queue in topology.WORK_QUEUES:
        topology.declare_wait_queues(channel, queue, TEST_RETRY_DELAYS)


def _empty_queues(channel: Any) -> None:
    # Purging a quorum queue is a write to its log: only the queues that hold something are purged.
    for name in all_queue_names(TEST_RETRY_DELAYS):
        if channel.queue_declare(name, passive=True).method.message_count:
            channel.queue_purge(name)


# The vhosts whose topology this process has declared: once is enough, unless a queue was deleted since.
_declared: set[str] = set()


@pytest.fixture
def broker(amqp_url: str) -> str:
    """An AMQP URL whose topology is declared and whose queues are empty."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        if amqp_url not in _declared:
            _declare_topology(channel)
            _declared.add(amqp_url)
        try:
            _empty_queues(channel)
        except pika.exceptions.ChannelClosedByBroker:  # a test deleted a queue (NOT_FOUND): declare it again
            channel = connection.channel()
            _declare_topology(channel)
            _empty_queues(channel)
    finally:
        connection.close()
    return amqp_url


def drain(amqp_url: str, queue: str) -> list[tuple[pika.BasicProperties, bytes]]:
    """Take every message currently in `queue` (acked)."""
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    out = []
    while True:
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            break
        out.append((properties, body))
    connection.close()
    return out


def queue_depth(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.message_count
    finally:
        connection.close()
