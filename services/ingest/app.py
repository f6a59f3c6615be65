"""The webhook receiver as a plain WSGI application (docs/interfaces.md, "HTTP: ingest").

    POST /webhooks/woocommerce   WooCommerce deliveries; checks in this order:
                                 size -> ping -> signature -> source -> topic -> JSON -> order
    GET  /healthz                200 while the process runs
    GET  /readyz                 200 when RabbitMQ and PostgreSQL answer, else 503
    GET  /metrics                Prometheus text format

The source check refuses (403) a signed delivery that a copy of the shop
(a staging site that kept the webhooks and their secret) sent: its
X-WC-Webhook-Source is not the shop's site (services/ingest/sources.py).
A valid order event is answered 200 only once RabbitMQ has confirmed every
message (OrderIntake.submit publishes with confirms). The server threads
share one GroupedPublisher: the orders that arrive together go out in one
write and are confirmed together (services/ingest/grouped_publisher.py).
"""
from __future__ import annotations

import json
import re
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from shared.clients.shop.signature import verify
from shared.db import get_autocommit_engine
from shared.db import ping as ping_database
from shared.messaging.amqp import BrokerUnavailable, Publisher
from shared.observability.logging import bound_ids, get_logger
from shared.orders.events import InvalidOrder
from shared.orders.intake import LookupKeptChanging, OrderIntake
from shared.orders.vocabulary import ORDER_TOPICS
from shared.products.lookup import ProductLookupCache
from shared.shop_state.site_records import LearnedSite, Refused, read_learned_site, record_refusals
from shared.shop_state.sites import NO_SOURCE, AcceptedSites, refusal
from services.ingest.grouped_publisher import GroupedPublisher

from services.ingest.metrics import IngestMetrics
from services.ingest.sources import SiteCache, SourceRefusals

log = get_logger("ingest")

WEBHOOK_PATH = "/webhooks/woocommerce"
# Beyond this an oversized body is not even drained: the connection is closed instead.
MAX_DRAIN = 16 * 1024 * 1024
MAX_BODY = 1024 * 1024  # 1 MiB
_READ_CHUNK = 64 * 1024
# WooCommerce's ping: form-encoded, unsigned, no X-WC-* headers (docs/woocommerce.md §1.4).
_PING_BODY = re.compile(rb"webhook_id=\d{1,20}")
_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout, LookupKeptChanging)

StartResponse = Callable[..., Any]


@dataclass
class Answer:
    status: int
    outcome: str
    body: dict[str, Any] = field(default_factory=dict)
    order_id: int | None = None
    published: int = 0
    problem: str | None = None


_REASONS = {
    200: "OK", 202: "Accepted", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 413: "Content Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
}


def _respond(
    start_response: StartResponse, status: int, payload: bytes, content_type: str = "application/json",
    extra: Iterable[tuple[str, str]] = (),
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(payload))), *extra]
    start_response(f"{status} {_REASONS.get(status, '')}".rstrip(), headers)
    return [payload]


def _json(start_response: StartResponse, status: int, body: dict[str, Any], **kw: Any) -> list[bytes]:
    return _respond(start_response, status, json.dumps(body).encode("utf-8"), **kw)


def describe(exc: BaseException) -> str:
    """One short line about a failure to reach a dependency, without credentials."""
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return _URL_CREDENTIALS.sub(r"\1***@", line)[:200]


def safe_traceback(exc: BaseException) -> str:
    """The stack and exception types, without the messages: those may quote the order."""
    te = traceback.TracebackException.from_exception(exc)
    return "".join(te.stack.format()) + f"{te.exc_type.__module__}.{te.exc_type.__qualname__}"


def _printable(text: str) -> str:
    """A problem text that any log stream can print (no lone surrogates)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:300]


def _header(environ: dict[str, Any], name: str) -> str | None:
    """A request header as sent (WSGI hands it over as Latin-1), or None when absent."""
    value = environ.get(name)
    if value is None:
        return None
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:  # not UTF-8 (or already decoded): as it came
        return value


def _order_id_hint(body: Any) -> int | None:
    value = body.get("id") if isinstance(body, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


class IngestApp:
    def __init__(
        self,
        *,
        secret: str,
        database_url: str,
        amqp_url: str,
        sites: AcceptedSites,
        metrics: IngestMetrics | None = None,
    ) -> None:
        if not secret:
            raise ValueError("a webhook secret is required")
        if not sites:
            raise ValueError("the shop's site is required (WC_URL or WC_WEBHOOK_SOURCES)")
        self._secret = secret
        self._database_url = database_url
        self._amqp_url = amqp_url
        self.metrics = metrics or IngestMetrics()
        self._local = threading.local()
        self._publisher = GroupedPublisher(amqp_url)
        self._ready: bool | None = None
        # One cache of line resolutions for every thread (shared/products/lookup.py).
        self._lookups = ProductLookupCache()
        self.sites = SiteCache(sites, self._read_learned_site)
        self.refusals = SourceRefusals(self._record_refusals)

    # -- per-thread resources ------------------------------------------------------------

    def _intake(self) -> OrderIntake:
        intake = getattr(self._local, "intake", None)
        if intake is None:
            intake = self._local.intake = OrderIntake(self._database_url, self._publisher, self._lookups)
        return intake

    def close(self) -> None:
        """Record what is still counted and close the broker connection (the server has stopped
        handling requests)."""
        self.refusals.close()
        self._publisher.close()

    def _read_learned_site(self) -> LearnedSite | None:
        with get_autocommit_engine(self._database_url).connect() as connection:
            return read_learned_site(connection)

    def _record_refusals(self, refusals: list[Refused]) -> None:
        with get_autocommit_engine(self._database_url).connect() as connection:
            record_refusals(connection, refusals)

    # -- routing ---------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD", "GET")
        if path.rstrip("/") == WEBHOOK_PATH:
            if method != "POST":
                return _json(start_response, 405, {"error": "use POST"}, extra=[("Allow", "POST")])
            return self.webhook(environ, start_response)
        routes = {"/healthz": self.healthz, "/readyz": self.readyz, "/metrics": self.render_metrics}
        handler = routes.get(path)
        if handler is None:
            return _json(start_response, 404, {"error": "not found"})
        if method not in ("GET", "HEAD"):
            return _json(start_response, 405, {"error": "use GET"}, extra=[("Allow", "GET, HEAD")])
        return handler(environ, start_response)

    def healthz(self, _environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        return _json(start_response, 200, {"status": "ok"})

    def render_metrics(self, _environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        payload, content_type = self.metrics.render()
        return _respond(start_response, 200, payload, content_type)

    # -- readiness -------------------------------------------------------------------------

    def check_broker(self) -> None:
        """Raise BrokerUnavailable unless the shared connection (or a new one) answers."""
        try:
            self._publisher.ping()
        except BrokerUnavailable:
            self._publisher.ping()  # a connection gone stale since the last request: one fresh try

    def readiness(self) -> dict[str, str]:
        problems: dict[str, str] = {}
        try:
            self.check_broker()
        except BrokerUnavailable as exc:
            problems["broker"] = describe(exc)
        try:
            ping_database(self._database_url)
        except Exception as exc:  # any failure to reach PostgreSQL
            problems["database"] = describe(exc)
        ready = not problems
        if ready != self._ready:
            self._ready = ready
            if ready:
                log.info("ready")
            else:
                log.warning("not ready", **problems)
        return problems

    def readyz(self, _environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        problems = self.readiness()
        if problems:
            return _json(start_response, 503, {"status": "unavailable", "unavailable": sorted(problems)})
        return _json(start_response, 200, {"status": "ready"})

    def check_dependencies(self) -> None:
        """At start: say whether RabbitMQ and PostgreSQL answer; never wait for them."""
        publisher = Publisher(self._amqp_url)
        try:
            publisher.ping()  # also declares the topology
        except BrokerUnavailable as exc:
            log.warning("rabbitmq unreachable; order events are answered 503 until it is back", error=describe(exc))
        finally:
            publisher.close()
        try:
            ping_database(self._database_url)
        except Exception as exc:  # any failure to reach PostgreSQL
            log.warning("database unreachable; order events are answered 503 until it is back", error=describe(exc))
        self.sites.current()  # the shop's home, before the first delivery asks for it

    # -- the webhook -----------------------------------------------------------------------

    def webhook(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        started = time.perf_counter()
        topic = (environ.get("HTTP_X_WC_WEBHOOK_TOPIC") or "").strip()
        failure: str | None = None
        try:
            answer = self._handle(environ, topic)
        except Exception as exc:  # a bug: answer 500, log where without quoting the order
            answer = Answer(500, "error", {"error": "internal error"}, problem=type(exc).__name__)
            failure = safe_traceback(exc)
        duration = time.perf_counter() - started
        self.metrics.observe(answer.outcome, duration, answer.published)
        if answer.outcome == "other_topic":
            self.metrics.other_topic(topic)
        source = _header(environ, "HTTP_X_WC_WEBHOOK_SOURCE")
        fields = dict(
            topic=_printable(topic) if topic else None,
            order_id=answer.order_id,
            outcome=answer.outcome,
            status=answer.status,
            messages=answer.published,
            duration_ms=round(duration * 1000, 2),
            delivery_id=(environ.get("HTTP_X_WC_WEBHOOK_DELIVERY_ID") or "")[:64] or None,
        )
        if answer.outcome == "wrong_source":
            fields["source"] = _printable(source) if source else None
        if answer.problem:
            fields["problem"] = _printable(answer.problem)
        if failure:
            fields["traceback"] = failure
        # A refused source has its own warning, once a minute per source (services/ingest/sources.py).
        quiet = answer.status < 400 or answer.outcome == "wrong_source"
        level = log.info if quiet else log.error if answer.outcome == "error" else log.warning
        with bound_ids(order_id=answer.order_id):
            level("webhook", **fields)
        return _json(start_response, answer.status, answer.body)

    def _handle(self, environ: dict[str, Any], topic: str) -> Answer:
        try:
            body = self._read_body(environ)
        except OSError as exc:  # the client stopped sending (gunicorn's NoMoreData, a broken chunk)
            return Answer(400, "invalid", {"error": "the body could not be read"}, problem=type(exc).__name__)
        if body is None:
            return Answer(413, "too_large", {"error": f"body over {MAX_BODY} bytes"}, problem="body too large")

        if _PING_BODY.fullmatch(body.strip()) and not any(key.startswith("HTTP_X_WC_") for key in environ):
            return Answer(200, "ping", {"status": "ok"})

        signature = environ.get("HTTP_X_WC_WEBHOOK_SIGNATURE") or ""
        if not signature:
            return Answer(401, "unauthorized", {"error": "missing X-WC-Webhook-Signature"}, problem="no signature")
        if not verify(body, signature, self._secret):
            return Answer(401, "unauthorized", {"error": "X-WC-Webhook-Signature does not match the body"},
                          problem="bad signature")

        refused = self._refuse_source(_header(environ, "HTTP_X_WC_WEBHOOK_SOURCE"))
        if refused is not None:
            return refused

        if not topic:
            return Answer(400, "invalid", {"error": "missing X-WC-Webhook-Topic"}, problem="no topic")
        if topic not in ORDER_TOPICS:
            return Answer(202, "other_topic", {"status": "ignored", "reason": "not an order event"})

        try:
            payload = json.loads(body)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8, too many digits
            problem = f"the body is not JSON: {exc.msg if isinstance(exc, json.JSONDecodeError) else type(exc).__name__}"
            return Answer(400, "invalid", {"error": problem}, problem=problem)

        order_id = _order_id_hint(payload)
        with bound_ids(order_id=order_id):
            try:
                conversion = self._intake().submit(payload, topic, "webhook")
            except InvalidOrder as exc:
                return Answer(400, "invalid", {"error": str(exc)}, order_id, problem=str(exc))
            except BrokerUnavailable as exc:
                return Answer(503, "broker_unavailable", {"error": "message broker unavailable"}, order_id,
                              problem=describe(exc))
            except DATABASE_DOWN as exc:
                return Answer(503, "database_unavailable", {"error": "database unavailable"}, order_id,
                              problem=describe(exc))
        published = len(conversion.messages)
        if not published:
            return Answer(200, "ignored", {"status": "ignored", "reason": conversion.ignored or "nothing to do"},
                          conversion.order_id)
        return Answer(200, "published", {"status": "published", "messages": published}, conversion.order_id,
                      published=published)

    def _refuse_source(self, source: str | None) -> Answer | None:
        """None when the delivery comes from the shop's site, else the answer refusing it.

        The configured sites are checked first (no database); the learned home only when they
        do not accept it. Without ever having read the database there is no telling whether
        the source is the shop's home: answered 503 like an order the database is needed for,
        never refused for a site the system could not look up.
        """
        if self.sites.configured.accepts(source):
            return None
        sites = self.sites.current()
        if sites is None and source is not None and source.strip():
            return Answer(503, "database_unavailable", {"error": "database unavailable"},
                          problem="the shop's site could not be read")
        reason = refusal(source, sites if sites is not None else self.sites.configured)
        if reason is None:
            return None
        self.refusals.refused(source)
        shown = _printable(source) if source is not None else None
        return Answer(403, "wrong_source", {"error": reason, "source": shown},
                      problem="no source header" if reason == NO_SOURCE else "not the shop's site")

    @staticmethod
    def _read_body(environ: dict[str, Any]) -> bytes | None:
        """The raw body, or None when it is over MAX_BODY. Never reads more than MAX_BODY + 1 bytes."""
        stream = environ["wsgi.input"]
        declared = (environ.get("CONTENT_LENGTH") or "").strip()
        if declared.isdigit():
            length = int(declared)
            if length > MAX_BODY:
                # Read and drop the body (up to a bound) so the connection can carry
                # the next request: gunicorn drains only 64 KiB of an unread body and
                # then hangs up on a client that was told to keep the connection.
                _read(stream, min(length, MAX_DRAIN), keep=False)
                return None
            return _read(stream, length)
        body = _read(stream, MAX_BODY + 1)  # chunked: no length to check first
        return None if len(body) > MAX_BODY else body


def _read(stream: Any, limit: int, *, keep: bool = True) -> bytes:
    parts: list[bytes] = []
    remaining = limit
    while remaining > 0:
        chunk = stream.read(min(remaining, _READ_CHUNK))
        if not chunk:
            break
        remaining -= len(chunk)
        if keep:
            parts.append(chunk)
    return b"".join(parts)
