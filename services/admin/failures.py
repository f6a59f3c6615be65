"""How the operator's commands fail: one clear line on stderr and exit code 2.

`fails_cleanly` maps what an operator can meet (a setting missing, the
database or RabbitMQ down, the schema not migrated, the supplier or the shop
refusing) onto that one line; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NoReturn

import click
from pika.exceptions import AMQPError
from sqlalchemy.exc import OperationalError, ProgrammingError

from shared.failures.errors import ExternalError
from shared.messaging.amqp import BrokerUnavailable
from shared.settings import ConfigurationError


class Failure(click.ClickException):
    """The command could not do its work: one line on stderr, exit 2."""

    exit_code = 2


def fails_cleanly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the failures an operator can meet into one line and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ConfigurationError as exc:
            raise Failure(str(exc.code)) from None
        except OperationalError as exc:
            raise Failure(f"database unavailable: {first_line(exc.orig or exc)}") from None
        except ProgrammingError as exc:
            first = first_line(exc.orig or exc)
            if "does not exist" in first:
                raise Failure(f"database schema missing ({first}): run `rewix-sync db upgrade`") from None
            raise
        except BrokerUnavailable as exc:
            raise Failure(f"RabbitMQ unavailable: {first_line(exc)}") from None
        except AMQPError as exc:
            raise Failure(f"RabbitMQ unavailable: {exc!r}") from None
        except ExternalError as exc:
            raise Failure(external_failure(exc)) from None

    return wrapper


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def external_failure(exc: ExternalError) -> str:
    if exc.refuses_credentials:
        return f"credentials refused (HTTP {exc.status}): {first_line(exc)}"
    return first_line(exc)


def exit_with(code: int) -> NoReturn:
    """End the command with `code` and no message (reconcile's 1: differences remain)."""
    raise click.exceptions.Exit(code)
