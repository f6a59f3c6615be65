"""Database access: one engine per process, sessions with commit-or-rollback."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, make_url, text
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


# The longest one statement of the hot path may run (ingest's REMEMBER takes a
# millisecond): one that waits on a lock (a migration, a VACUUM FULL) gives its
# server thread back with an error instead of holding it, and every other, for as
# long as the lock is held.
HOT_PATH_STATEMENT_TIMEOUT_SECONDS = 5


@lru_cache(maxsize=8)
def get_autocommit_engine(url: str) -> Engine:
    """For work of one statement at a time on a hot path (ingest's order events).

    Autocommit: no BEGIN and COMMIT round trips around the statement. No ping
    on checkout (a round trip per use): the caller tries once more when a
    connection turns out to be gone. The pool holds a connection per server
    thread, so none is opened and closed per request. A statement is cancelled
    after HOT_PATH_STATEMENT_TIMEOUT_SECONDS.
    """
    url = normalise_url(url)
    # The timeout goes after any `options` the operator gave in DATABASE_URL (a search_path,
    # say): connect_args would otherwise replace them.
    given = make_url(url).query.get("options")
    options = " ".join(filter(None, [given if isinstance(given, str) else None,
                                     f"-c statement_timeout={HOT_PATH_STATEMENT_TIMEOUT_SECONDS * 1000}"]))
    return create_engine(
        url,
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,
        pool_size=16,
        max_overflow=4,
        connect_args={
            "connect_timeout": 5,
            "application_name": "rewix-sync",
            "options": options,
        },
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
