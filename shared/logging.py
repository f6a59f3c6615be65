"""Structured logging: JSON for machines, console for people.

Every line carries the ids bound with `bind_ids` (order id, message id) via
structlog's contextvars. Secrets never reach a line: known secret fields are
replaced, and customers' personal data (names, e-mails, phones, street
addresses) is masked wherever it appears under a known key.
"""
from __future__ import annotations

import logging
import re
import sys
from typing import Any

import structlog

SECRET_KEYS = frozenset(
    {
        "password", "secret", "token", "authorization", "api_key", "rewix_api_password",
        "wc_webhook_secret", "wc_consumer_secret", "admin_token", "consumer_secret", "amqp_url",
        "database_url",
    }
)
PERSONAL_KEYS = frozenset(
    {
        "name", "recipient", "first_name", "last_name", "company", "careof", "email", "phone",
        "address", "address_1", "address_2", "street", "street_name", "postcode", "zip",
        "customer_note", "notes",
    }
)


# scheme://user:password@host anywhere in a string (an error text, a URL under any key).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")


def hide_url_credentials(text: str) -> str:
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:[secret]@", text)


def mask(value: Any) -> str:
    """Keep enough to recognise a value, never enough to read it: 'Zoë Müller' -> 'Z***r'."""
    text = str(value)
    if len(text) <= 2:
        return "***"
    return f"{text[0]}***{text[-1]}"


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
    if isinstance(value, str) and "://" in value:
        return hide_url_credentials(value)
    return value


def scrub_processor(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    scrubbed = {k: (v if k == "event" else _scrub(v, k)) for k, v in event_dict.items()}
    if "exception" in scrubbed and isinstance(scrubbed["exception"], str):
        scrubbed["exception"] = hide_url_credentials(scrubbed["exception"])
    return scrubbed


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
            scrub_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # Libraries (pika, urllib3, gunicorn) log through the standard library: keep them quiet.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")
    logging.getLogger("pika").setLevel(logging.CRITICAL)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name)


bind_ids = structlog.contextvars.bind_contextvars
clear_ids = structlog.contextvars.clear_contextvars
bound_ids = structlog.contextvars.bound_contextvars
