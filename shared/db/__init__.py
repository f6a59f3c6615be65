"""Database access: one engine per process, sessions with commit-or-rollback."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """`postgresql://` means psycopg2 (the contract); SQLAlchemy 2.1 would pick psycopg 3."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    return create_engine(
        normalise_url(url),
        pool_pre_ping=True,  # a restarted PostgreSQL costs one failed ping, not a failed message
        # An error's text would otherwise quote the statement's parameters: recipients, notes.
        hide_parameters=True,
        pool_size=5,
        max_overflow=5,
        connect_args={"connect_timeout": 5, "application_name": "rewix-sync"},
    )


@lru_cache(maxsize=8)
def get_autocommit_engine(url: str) -> Engine:
    """For work of one statement at a time on a hot path (ingest's order events).

    Autocommit: no BEGIN and COMMIT round trips around the statement. No ping
    on checkout (a round trip per use): the caller tries once more when a
    connection turns out to be gone. The pool holds a connection per server
    thread, so none is opened and closed per request.
    """
    return create_engine(
        normalise_url(url),
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        pool_size=16,
        max_overflow=4,
        connect_args={"connect_timeout": 5, "application_name": "rewix-sync"},
    )


@lru_cache(maxsize=8)
def _session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(get_engine(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """`with session_scope(url) as s: ...`: commits on success, rolls back on error."""
    session = _session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def ping(url: str) -> None:
    with get_engine(url).connect() as connection:
        connection.execute(text("SELECT 1"))
