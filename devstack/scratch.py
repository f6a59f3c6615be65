"""Scratch PostgreSQL databases and RabbitMQ vhosts: uniquely named, created, migrated, removed.

Creating and removing one waits out a PostgreSQL or RabbitMQ restart of up to
RESTART_PATIENCE seconds (the fault tests restart the shared servers), so
nothing is left behind by a restart elsewhere. RabbitMQ vhosts are made with
`rabbitmqctl`, which therefore must run on the broker's machine.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from devstack.servers import rabbitmqctl_command
from shared.db import normalise_url

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
RESTART_PATIENCE = 30.0
NO_SUCH_VHOST = 65  # rabbitmqctl's exit status for a vhost that does not exist


def base_database_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL


def base_amqp_url() -> str:
    return os.environ.get("AMQP_URL") or DEFAULT_AMQP_URL


def unique_name(prefix: str) -> str:
    """`prefix_` and eight random hex digits: two runs at once never pick the same."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def with_path(url: str, path: str) -> str:
    return urllib.parse.urlsplit(url)._replace(path=path).geturl()


# --- PostgreSQL ------------------------------------------------------------------------------------


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


@contextmanager
def scratch_database(prefix: str = "scratch", *, name: str | None = None, base_url: str | None = None,
                     keep: bool = False, migrate: bool = True) -> Iterator[str]:
    """A new database (named `name`, or uniquely after `prefix`), migrated; dropped on exit unless `keep`.

    A database of that name left by an earlier run is dropped first. Open your
    own engine on it rather than shared.db's cached one, or clear that cache
    before the end: the drop forces every connection closed.
    """
    from shared.db.migrate import upgrade

    server = normalise_url(base_url or base_database_url())
    name = name or unique_name(prefix)
    # No pool: the connection is needed to create and to drop, not held in between (a test run keeps
    # one scratch database per worker open for its whole length).
    admin = create_engine(with_path(server, "/postgres"), isolation_level="AUTOCOMMIT", poolclass=NullPool)
    try:
        _patiently(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _patiently(admin, f'CREATE DATABASE "{name}"')
        try:
            url = with_path(server, f"/{name}")
            if migrate:
                upgrade(url)
            yield url
        finally:
            if not keep:
                _patiently(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


# --- RabbitMQ --------------------------------------------------------------------------------------


def rabbitmqctl_available() -> bool:
    return shutil.which("rabbitmqctl") is not None


def rabbitmqctl(*args: str, ok: tuple[int, ...] = (0,), patience: float = RESTART_PATIENCE,
                amqp_url: str | None = None) -> None:
    """Run `rabbitmqctl -q ARGS` on the node serving `amqp_url` (default: AMQP_URL's), trying again for a
    while when the broker does not answer."""
    command = rabbitmqctl_command(amqp_url or base_amqp_url())
    deadline = time.monotonic() + patience
    while True:
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=60)
        if done.returncode in ok:
            return
        if time.monotonic() >= deadline:
            detail = (done.stderr or done.stdout).strip().splitlines()
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} exited with {done.returncode}: "
                               f"{detail[-1] if detail else ''}")
        time.sleep(1.0)


def create_vhost(name: str, amqp_url: str | None = None) -> str:
    """A fresh vhost (an old one of that name goes first) the URL's user may use; returns its URL."""
    amqp_url = amqp_url or base_amqp_url()
    parsed = urllib.parse.urlsplit(amqp_url)
    user = urllib.parse.unquote(parsed.username or "guest")
    rabbitmqctl("delete_vhost", name, ok=(0, NO_SUCH_VHOST), amqp_url=amqp_url)
    rabbitmqctl("add_vhost", name, amqp_url=amqp_url)
    rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*", amqp_url=amqp_url)
    return parsed._replace(path="/" + urllib.parse.quote(name, safe="")).geturl()


def delete_vhost(name: str, amqp_url: str | None = None) -> None:
    rabbitmqctl("delete_vhost", name, ok=(0, NO_SUCH_VHOST), amqp_url=amqp_url)


@contextmanager
def scratch_vhost(prefix: str = "scratch", *, name: str | None = None, base_url: str | None = None,
                  keep: bool = False) -> Iterator[str]:
    """A new RabbitMQ vhost (named `name`, or uniquely after `prefix`); deleted on exit unless `keep`."""
    name = name or unique_name(prefix)
    try:
        yield create_vhost(name, base_url)
    finally:
        if not keep:
            delete_vhost(name, base_url)
