"""`rewix-sync web`: the operator page, a small Flask app behind ADMIN_TOKEN, served by gunicorn.

A person logs in with the token and gets a session (web_sessions.py) that
expires after ADMIN_SESSION_HOURS and that logout revokes; a script sends
`Authorization: Bearer <token>`; wrong tokens are throttled per client address
either way. Without ADMIN_TOKEN set the page refuses everyone. Replaying a dead
letter is the one write: a POST form carrying a CSRF token of the session
(derived from its secret id, so it dies with the session), after a confirm()
in the browser; a request with the bearer token needs none (no browser sends
that header by itself).
The HTML comes from templates/ with autoescaping on, so every value shown is
escaped; the table columns are the terminal's (columns.py).
"""
from __future__ import annotations

import atexit
import gc
import html
import ipaddress
import secrets
import time
from urllib.parse import urlencode
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, make_response, redirect, render_template, request
from gunicorn.app.base import BaseApplication
from markupsafe import Markup
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest
from prometheus_client.process_collector import ProcessCollector
from werkzeug.exceptions import HTTPException

from shared.db import session_scope
from shared.messaging.amqp import BrokerUnavailable
from shared.observability.logging import get_logger
from shared.products import unmatched as unmatched_lines
from shared.reservations import repository
from shared.settings import Settings
from services.admin import columns, dead_letters, html_cells, order_filters, page_cache, views
from services.admin import payment_tables
from services.admin.health_report import HealthPanel
from services.admin.payment_panel import PaymentPanel
from services.admin.web_sessions import LoginThrottle, Sessions, derived, same

log = get_logger("admin.web")

COOKIE = "rewix_admin"
MAX_FORM_BYTES = 8 * 1024
BEARER_CHALLENGE = ("WWW-Authenticate", 'Bearer realm="rewix-sync"')
# Paths anyone may reach: the health check, and what logging in and out needs.
OPEN_PATHS = ("/healthz", "/login", "/logout")
# A page load right after the start waits this long for the first drain of the dead-letter queues.
FIRST_DRAIN_WAIT = 10.0
# The page warns once the last drain finished longer ago than this many intervals (and at least these seconds).
STALE_DRAINS, STALE_DRAIN_SECONDS = 10, 60.0


def csrf_token(token: str, session_id: str) -> str:
    """The replay form's CSRF token: one per session, worthless without the session's cookie."""
    return derived(token, f"csrf {session_id}")


def _escaped(value: Any) -> Any:
    """What a template prints: escaped as html.escape does (quotes as &quot;), already-safe markup as it is."""
    if isinstance(value, Markup):
        return value
    return Markup(html.escape("" if value is None else str(value), quote=True))


def page(status: int, template: str, headers: list[tuple[str, str]] | None = None, **values: Any) -> Response:
    response = make_response(render_template(template, **values), status)
    for name, value in headers or []:
        response.headers[name] = value
    return response


def message(status: int, title: str, text: str, *, css: str = "", challenge: bool = False,
            retry_after: int | None = None) -> Response:
    headers = [BEARER_CHALLENGE] if challenge else []
    if retry_after is not None:
        headers.append(("Retry-After", str(retry_after)))
    return page(status, "message.html", headers, title=title, text=text, css=css)


def login_form(status: int = 200, error: str | None = None) -> Response:
    return page(status, "login.html", [BEARER_CHALLENGE], title="Log in", error=error)


def pagination_query(wanted: order_filters.OrderFilter, number: int) -> dict[str, str]:
    """The query string of page `number` with the same filters."""
    query = {"attention": "1" if wanted.attention else "", "shop_status": wanted.shop_status or "",
             "sync_state": wanted.sync_state or "", "q": wanted.search or "", "page": str(number)}
    return {k: v for k, v in query.items() if v}


class Proxies:
    """The reverse proxies whose forwarded headers are believed (ADMIN_TRUSTED_PROXIES)."""

    def __init__(self, networks: list[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusted(self, address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client_address(self) -> str:
        """The client's address: the socket's, or the one a trusted proxy forwarded for."""
        remote = request.remote_addr or "unknown"
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded and self.trusted(remote):
            return forwarded.split(",")[-1].strip() or remote
        return remote

    def over_tls(self) -> bool:
        """Served over TLS: here, or between the client and a trusted proxy."""
        if request.scheme == "https":
            return True
        proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return proto == "https" and self.trusted(request.remote_addr)


def create_app(settings: Settings) -> Flask:
    token = settings.secret("admin_token") or None
    database_url, amqp_url = settings.database_url, settings.amqp_url
    wc_url = settings.wc_url
    storage = settings.wc_order_storage
    health = HealthPanel(settings)
    payment_panel = PaymentPanel(settings)
    # The page's own metrics (GET /metrics, open like /healthz): the process, and how long the page takes.
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    page_seconds = Histogram("rewix_admin_page_duration_seconds", "Time to build the operator page.",
                             buckets=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0), registry=registry)
    lifetime = timedelta(hours=settings.admin_session_hours)
    drain_stale_after = max(STALE_DRAINS * settings.admin_dead_letter_drain_seconds, STALE_DRAIN_SECONDS)
    sessions = Sessions(database_url, token, lifetime) if token else None
    throttle = LoginThrottle(database_url)
    proxies = Proxies(settings.admin_trusted_proxies)
    # The dead-letter queues are drained into the table from a thread of this process, not by each page load.
    drainer = dead_letters.BackgroundDrain(amqp_url, database_url, settings.admin_dead_letter_drain_seconds).start()
    atexit.register(drainer.stop)

    app = Flask(__name__)
    app.config.update(MAX_CONTENT_LENGTH=MAX_FORM_BYTES, MAX_FORM_PARTS=20)
    app.jinja_env.autoescape = True  # every template, whatever its name
    app.jinja_env.finalize = _escaped
    app.jinja_env.globals["row_cells"] = html_cells.row_cells
    app.jinja_env.globals["table_rows"] = html_cells.table_rows

    build_seconds = Histogram("rewix_admin_reservations_build_seconds",
                              "Time to build the page's reservations table (by the page's own thread).",
                              buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5), registry=registry)

    def build_reservations_table(db: Any) -> Markup:
        with build_seconds.time():
            rows = views.reservations(db, wc_url, storage)
            return app.jinja_env.get_template("tables.html").module.table(columns.RESERVATIONS, rows)

    # The page's largest part, kept current by a thread of this process while nothing it is
    # built from changes (page_cache.py): a page load does not wait for it to be built.
    reservations_table = page_cache.KeptPart(repository.change_marker, build_reservations_table,
                                             sessions=lambda: session_scope(database_url))
    atexit.register(reservations_table.stop)

    def bearer() -> str | None:
        authorization = request.headers.get("Authorization", "")
        return authorization[7:].strip() if authorization[:7].lower() == "bearer " else None

    def throttled(address: str, what: str) -> int | None:
        """Seconds `address` must wait after too many wrong tokens (logged), or None."""
        wait = throttle.retry_after(address)
        if wait is not None:
            log.warning(f"operator page {what} throttled", client=address)
        return wait

    def authenticated() -> Response | None:
        """None when the request may go on, else the answer: the login form, or 429 while throttled.
        Sets g.session_id for a browser's session (None for the bearer token)."""
        assert token is not None and sessions is not None
        g.session_id = None
        offered = bearer()
        if offered is not None:
            # Guessing the token is throttled here exactly as through the login form.
            address = proxies.client_address()
            wait = throttled(address, "bearer token")
            if wait is not None:
                return message(429, "Too many requests", f"Too many wrong tokens: try again in {wait} s.",
                               challenge=True, retry_after=wait)
            if not same(offered, token):
                throttle.failed(address)
                log.warning("operator page bearer token refused", client=address)
                return login_form(401)
            return None
        session_id = request.cookies.get(COOKIE)
        if not sessions.valid(session_id):
            return login_form(401)
        g.session_id = session_id
        return None

    @app.before_request
    def guard() -> Response | None:
        g.nonce = secrets.token_urlsafe(16)
        if request.path in ("/healthz", "/metrics"):  # for compose and Prometheus: nothing of the store
            return None
        if token is None:
            return message(401, "Refused", "ADMIN_TOKEN is not set: this page refuses everyone until it is.",
                           challenge=True)
        if request.path in OPEN_PATHS:
            return None
        return authenticated()

    @app.after_request
    def security_headers(response: Response) -> Response:
        nonce = g.get("nonce", "")
        response.headers.update({
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        })
        return response

    @app.context_processor
    def nonce() -> dict[str, Any]:
        return {"nonce": g.get("nonce", "")}

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        if exc.code is not None and exc.code < 400:  # a redirect werkzeug's routing asks for
            return exc
        texts = {404: "No such page.", 405: "Method not allowed.", 413: "The form is too large."}
        return message(exc.code or 500, exc.name, texts.get(exc.code or 0, exc.description or exc.name))

    @app.errorhandler(Exception)
    def failed(exc: Exception) -> Response:  # a bug or a dependency failing mid-page: logged, a plain 500
        log.exception("operator page failed", path=request.path)
        return message(500, "Error", "Something failed; see the log.")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok", content_type="text/plain; charset=utf-8")

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)

    @app.route("/login", methods=["GET", "POST"])
    def login() -> Response:
        if request.method != "POST":
            return login_form()
        address = proxies.client_address()
        wait = throttled(address, "login")
        if wait is not None:
            response = login_form(429, f"Too many wrong tokens: try again in {wait} s.")
            response.headers["Retry-After"] = str(wait)
            return response
        if not same(request.form.get("token"), token):
            throttle.failed(address)
            log.warning("operator page login refused", client=address)
            return login_form(401, "That is not the admin token.")
        assert sessions is not None
        throttle.succeeded(address)
        response = redirect("/", 303)
        response.set_cookie(COOKIE, sessions.open(), max_age=int(lifetime.total_seconds()), path="/",
                            httponly=True, samesite="Strict", secure=proxies.over_tls())
        return response

    @app.post("/logout")
    def logout() -> Response:
        assert sessions is not None
        sessions.revoke(request.cookies.get(COOKIE))
        response = redirect("/login", 303)
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="Strict", secure=proxies.over_tls())
        return response

    @app.get("/")
    @page_seconds.time()
    def overview() -> Response:
        notices, errors = [], []
        replayed = request.args.get("replayed", "")
        replayed_id = int(replayed) if replayed.isdigit() and len(replayed) < 19 else None
        if replayed_id is not None:
            notices.append(f"Dead letter #{replayed_id} was put back on its queue.")
        show_all = request.args.get("dead_letters") == "all"
        try:
            wanted = order_filters.OrderFilter.from_values(
                attention=request.args.get("attention") == "1", shop_status=request.args.get("shop_status"),
                sync_state=request.args.get("sync_state"), search=request.args.get("q"))
        except ValueError as exc:
            errors.append(str(exc))
            wanted = order_filters.OrderFilter()
        number = request.args.get("page", "1")
        drained = drainer.start().state()
        if drained.passes == 0:  # the process just started: its first look at the queues
            drained = drainer.wait_for_pass(0, timeout=FIRST_DRAIN_WAIT)
        if drained.error is not None:
            errors.append(drained.error)
        elif drained.finished_at is None or time.monotonic() - drained.finished_at > drain_stale_after:
            errors.append("The dead-letter queues have not been read for a while: the dead letters below may "
                          "not be all of them.")
        page_number = int(number) if number.isdigit() and len(number) < 9 else 1
        with session_scope(database_url) as db:
            reservations = reservations_table.get(db)
            orders = order_filters.page_of_orders(db, wanted, page_number, wc_url=wc_url, storage=storage)
            unmatched = unmatched_lines.unmatched(db)
            letters = [dead_letters.as_dict(r) for r in dead_letters.all_records(db)]
        if not show_all:
            # What still waits, and the letter just replayed, so its new state shows where it was clicked.
            letters = [r for r in letters if r["replayed_at"] is None or r["id"] == replayed_id]
        assert token is not None
        return page(200, "overview.html", title="Rewix sync", notices=notices, errors=errors,
                    reservations=reservations, orders=orders, unmatched=unmatched, letters=letters, show_all=show_all,
                    csrf=csrf_token(token, g.session_id) if g.session_id else "", tables=columns, health=health.current(),
                    payments=payment_panel.current(), payment_tables=payment_tables,
                    wanted=wanted, statuses=order_filters.SHOP_STATUSES, sync_states=order_filters.SYNC_STATES,
                    page_link=lambda n: "/?" + urlencode(pagination_query(wanted, n)) + "#orders")

    @app.post("/dead-letters/<int:record_id>/replay")
    def replay(record_id: int) -> Response:
        assert token is not None
        # A browser's session must show its own token; the bearer token is no browser's to send.
        if g.session_id is not None and not same(request.form.get("csrf"), csrf_token(token, g.session_id)):
            return message(403, "Refused", "The form is stale or forged: reload the page.")
        try:
            done = dead_letters.replay(database_url, amqp_url, [record_id])
        except dead_letters.UnknownDeadLetter:
            return message(404, "Not found", f"No dead letter #{record_id}.")
        except (BrokerUnavailable, KeyError) as exc:
            return message(503, "Not replayed", f"Not replayed: {exc}", css="error")
        log.info("dead letter replayed from the operator page", dead_letter=record_id, queue=done[0].queue)
        return redirect(f"/?replayed={record_id}#dead-letters", 303)

    return app


class AdminServer(BaseApplication):
    """gunicorn serving the page: one worker process, a few threads."""

    def __init__(self, settings: Settings, host: str) -> None:
        self.settings = settings
        self.host = host
        super().__init__()

    def load_config(self) -> None:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        options: dict[str, Any] = {
            "bind": [f"{host}:{self.settings.admin_port}"],
            "workers": 1,
            "worker_class": "gthread",
            "threads": 4,
            "graceful_timeout": 5,
            "timeout": 60,
            # gunicorn believes X-Forwarded-Proto only from the proxies the page trusts, as the page does.
            "forwarded_allow_ips": ",".join(self.settings.admin_trusted_proxies),
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "rewix-admin",
            "control_socket_disable": True,
            "when_ready": self._when_ready,
        }
        for key, value in options.items():
            if key in self.cfg.settings:
                self.cfg.set(key, value)

    @staticmethod
    def _when_ready(server: Any) -> None:
        for listener in server.LISTENERS:
            # Whoever started us (tests, scripts) reads this line to learn the address.
            print(f"operator page on {listener}", flush=True)

    def load(self) -> Flask:
        app = create_app(self.settings)
        with app.app_context():  # compiled now rather than by the first page load
            for name in ("overview.html", "tables.html", "message.html", "login.html"):
                app.jinja_env.get_template(name)
        # What is loaded by now lives as long as the worker: kept out of the garbage collector's
        # full passes, which a page's thousands of rows would otherwise trigger over all of it.
        gc.freeze()
        return app
