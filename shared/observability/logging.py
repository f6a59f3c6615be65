"""Structured logging: JSON for machines, console for people.

Every line carries the ids bound with `bind_ids` (order id, message id) via
structlog's contextvars. Secrets never reach a line: known secret fields are
replaced, and customers' personal data (names, e-mails, phones, street
addresses) is masked wherever it appears under a known key. Every other text,
tracebacks included, goes through shared.orders.text.mask_free_text (e-mails, phone
numbers and URL credentials) and loses what a terminal would obey (control
characters), and so do the standard library's log records and uncaught
exceptions.
"""
from __future__ import annotations

import logging
import sys
import threading
import traceback
from typing import Any

import structlog

from shared.orders.text import hide_url_credentials, mask, mask_free_text, printable

__all__ = ["bind_ids", "bound_ids", "clear_ids", "configure_logging", "get_logger", "hide_url_credentials", "mask"]

SECRET_KEYS = frozenset(
    {
        "password", "secret", "token", "authorization", "api_key", "rewix_api_password",
        "wc_webhook_secret", "wc_consumer_secret", "admin_token", "consumer_secret", "amqp_url",
        "database_url", "consumer_key", "wc_consumer_key", "rewix_api_key", "signature",
        "oauth_signature", "oauth_consumer_key", "csrf",
    }
)
PERSONAL_KEYS = frozenset(
    {
        "name", "recipient", "first_name", "last_name", "company", "careof", "email", "phone",
        "address", "address_1", "address_2", "street", "street_name", "postcode", "zip",
        "customer_note", "notes",
    }
)

# Written by this code, never from outside: left as they are (a timestamp is not a phone number).
_TRUSTED_KEYS = frozenset({"timestamp", "level", "logger"})


def _scrub(value: Any, key: str = "") -> Any:
    lowered = key.lower()
    if lowered in SECRET_KEYS:
        return "[secret]"
    if isinstance(value, dict):
        return {k: _scrub(v, str(k)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, key) for v in value]
    if lowered in PERSONAL_KEYS and value not in (None, ""):
        return mask(value)
    if isinstance(value, str):
        # Free text (an error quoting a body, an exception's message, a traceback), which a
        # console shows as it is: nothing in it may move the cursor or recolour the screen.
        return printable(mask_free_text(value))
    if isinstance(value, BaseException):
        return mask_free_text(repr(value))
    return value


def scrub_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Runs after format_exc_info, so the rendered traceback is masked like any field."""
    return {k: (v if k in _TRUSTED_KEYS else _scrub(v, k)) for k, v in event_dict.items()}


class MaskingFormatter(logging.Formatter):
    """For the standard library's records (gunicorn, SQLAlchemy, urllib3): the whole line masked."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(mask_free_text(super().format(record)))


def _print_masked_traceback(header: str, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    print(header + mask_free_text(text), file=sys.stderr, end="", flush=True)


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    # Same first line as Python's own hook; the traceback masked like every log line.
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else threading.get_ident()
    _print_masked_traceback(f"Exception in thread {name}:\n", args.exc_type, args.exc_value, args.exc_traceback)


def _excepthook(exc_type: Any, exc: BaseException, tb: Any) -> None:
    _print_masked_traceback("", exc_type, exc, tb)


def configure_logging(level: str = "INFO", fmt: str = "json") -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            scrub_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (pika, urllib3, gunicorn) log through the standard library: keep them quiet.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter("%(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    # Uncaught exceptions print their message too: it may quote a URL with its password.
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


bind_ids = structlog.contextvars.bind_contextvars
clear_ids = structlog.contextvars.clear_contextvars
bound_ids = structlog.contextvars.bound_contextvars
