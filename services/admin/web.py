"""`rewix-sync web`: the operator page, server-rendered, behind ADMIN_TOKEN.

A person logs in once with the token (an HttpOnly cookie then carries a value
derived from it); a script sends `Authorization: Bearer <token>`. Without
ADMIN_TOKEN set the page refuses everyone. Replaying a dead letter is the one
write: a POST form carrying a CSRF token derived from the admin token, after a
confirm() in the browser. Every value shown is HTML-escaped.
"""
from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets
import urllib.parse
from collections.abc import Callable, Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any

from gunicorn.app.base import BaseApplication

from services.admin import dead_letters, views
from services.admin.tables import format_time, iso_time
from shared.amqp import BrokerUnavailable
from shared.db import session_scope
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger("admin.web")

COOKIE = "rewix_admin"
MAX_FORM_BYTES = 8 * 1024
REPLAY_PATH = re.compile(r"^/dead-letters/(\d{1,18})/replay$")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def _derived(token: str, purpose: str) -> str:
    return hmac.new(token.encode("utf-8"), f"rewix-admin {purpose}".encode(), hashlib.sha256).hexdigest()


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two secrets (False when either is missing)."""
    if not a or not b:
        return False
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def e(value: Any) -> str:
    """Escape for HTML text and attribute values; None shows as a dash."""
    if value is None or value == "":
        return "-"
    return html.escape(str(value), quote=True)


class Response:
    def __init__(self, status: str, body: str = "", headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = status
        self.body = body.encode("utf-8")
        self.headers = list(headers)


class AdminApp:
    """The WSGI application."""

    def __init__(self, *, admin_token: str | None, database_url: str, amqp_url: str, retry_delays: list[int],
                 wc_url: str | None = None) -> None:
        self.token = admin_token or None
        self.database_url = database_url
        self.amqp_url = amqp_url
        self.retry_delays = retry_delays
        self.wc_url = wc_url

    # --- WSGI -----------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        nonce = secrets.token_urlsafe(16)
        try:
            response = self.route(environ, nonce)
        except Exception:  # a bug or a dependency failing mid-page: one line in the log, a plain 500
            log.exception("operator page failed", path=environ.get("PATH_INFO"))
            response = self.page("500 Internal Server Error", "Error", "<p>Something failed; see the log.</p>", nonce)
        headers = [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(response.body))),
            ("Cache-Control", "no-store"),
            ("X-Content-Type-Options", "nosniff"),
            ("X-Frame-Options", "DENY"),
            ("Referrer-Policy", "no-referrer"),
            ("Content-Security-Policy",
             f"default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; "
             "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
            *response.headers,
        ]
        start_response(response.status, headers)
        return [response.body] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]

    def route(self, environ: dict[str, Any], nonce: str) -> Response:
        method = environ.get("REQUEST_METHOD", "GET")
        path = environ.get("PATH_INFO", "/") or "/"
        if path == "/healthz" and method in ("GET", "HEAD"):
            return Response("200 OK", "ok")
        if self.token is None:
            return self.page("401 Unauthorized", "Refused",
                             "<p>ADMIN_TOKEN is not set: this page refuses everyone until it is.</p>", nonce,
                             [("WWW-Authenticate", 'Bearer realm="rewix-sync"')])
        if path == "/login":
            if method == "POST":
                return self.login(environ, nonce)
            if method in ("GET", "HEAD"):
                return self.login_form(nonce)
            return self.not_allowed(nonce)
        if path == "/logout" and method == "POST":
            return Response("303 See Other", "", [("Location", "/login"), ("Set-Cookie", self.cookie("", expire=True))])
        if not self.authenticated(environ):
            return self.login_form(nonce, status="401 Unauthorized")
        if path == "/" and method in ("GET", "HEAD"):
            return self.overview(environ, nonce)
        match = REPLAY_PATH.match(path)
        if match:
            if method != "POST":
                return self.not_allowed(nonce)
            return self.replay(environ, int(match.group(1)), nonce)
        return self.page("404 Not Found", "Not found", "<p>No such page. <a href=\"/\">Back</a></p>", nonce)

    # --- who may look ---------------------------------------------------------------------

    def authenticated(self, environ: dict[str, Any]) -> bool:
        assert self.token is not None
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        if authorization[:7].lower() == "bearer ":
            return same(authorization[7:].strip(), self.token)
        return same(self.cookies(environ).get(COOKIE), _derived(self.token, "session"))

    @staticmethod
    def cookies(environ: dict[str, Any]) -> dict[str, str]:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(environ.get("HTTP_COOKIE", ""))
        except CookieError:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}

    def cookie(self, value: str, *, expire: bool = False, secure: bool = False) -> str:
        parts = [f"{COOKIE}={value}", "Path=/", "HttpOnly", "SameSite=Strict"]
        if expire:
            parts.append("Max-Age=0")
        if secure:
            parts.append("Secure")
        return "; ".join(parts)

    def csrf(self) -> str:
        assert self.token is not None
        return _derived(self.token, "csrf")

    @staticmethod
    def form(environ: dict[str, Any]) -> dict[str, str] | None:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length < 0 or length > MAX_FORM_BYTES:
            return None
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            fields = urllib.parse.parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
        except (UnicodeDecodeError, ValueError):
            return None
        return {k: v[0] for k, v in fields.items()}

    def login(self, environ: dict[str, Any], nonce: str) -> Response:
        fields = self.form(environ) or {}
        if not same(fields.get("token"), self.token):
            return self.login_form(nonce, status="401 Unauthorized", error="That is not the admin token.")
        secure = environ.get("wsgi.url_scheme") == "https" or environ.get("HTTP_X_FORWARDED_PROTO") == "https"
        assert self.token is not None
        return Response("303 See Other", "", [
            ("Location", "/"),
            ("Set-Cookie", self.cookie(_derived(self.token, "session"), secure=secure)),
        ])

    # --- pages ----------------------------------------------------------------------------

    def login_form(self, nonce: str, *, status: str = "200 OK", error: str | None = None) -> Response:
        message = f'<p class="error">{e(error)}</p>' if error else ""
        body = f"""{message}
<form method="post" action="/login" class="login">
  <label for="token">Admin token</label>
  <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
  <button type="submit">Log in</button>
</form>"""
        return self.page(status, "Log in", body, nonce, [("WWW-Authenticate", 'Bearer realm="rewix-sync"')])

    def not_allowed(self, nonce: str) -> Response:
        return self.page("405 Method Not Allowed", "Not allowed", "<p>Method not allowed.</p>", nonce)

    def replay(self, environ: dict[str, Any], record_id: int, nonce: str) -> Response:
        fields = self.form(environ)
        if fields is None or not same(fields.get("csrf"), self.csrf()):
            return self.page("403 Forbidden", "Refused", "<p>The form is stale or forged: reload the page.</p>", nonce)
        try:
            done = dead_letters.replay(self.database_url, self.amqp_url, self.retry_delays, [record_id])
        except dead_letters.UnknownDeadLetter:
            return self.page("404 Not Found", "Not found", f"<p>No dead letter #{record_id}.</p>", nonce)
        except (BrokerUnavailable, KeyError) as exc:
            return self.page("503 Service Unavailable", "Not replayed", f"<p>Not replayed: {e(exc)}</p>", nonce)
        log.info("dead letter replayed from the operator page", dead_letter=record_id, queue=done[0].queue)
        return Response("303 See Other", "", [("Location", f"/?replayed={record_id}#dead-letters")])

    def overview(self, environ: dict[str, Any], nonce: str) -> Response:
        notices = []
        query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
        replayed = query.get("replayed", [""])[0]
        if replayed.isdigit():
            notices.append(f'<p class="notice" role="status">Dead letter #{int(replayed)} was put back on its queue.</p>')
        try:
            dead_letters.drain(self.amqp_url, self.database_url)
        except BrokerUnavailable as exc:
            notices.append(f'<p class="error">RabbitMQ unavailable, the dead-letter queues were not read: {e(exc)}</p>')
        with session_scope(self.database_url) as session:
            reservations = views.reservations(session, self.wc_url)
            orders = views.orders(session, self.wc_url)
            letters = [dead_letters.as_dict(r) for r in dead_letters.all_records(session)]
        body = "\n".join([
            *notices,
            '<form method="post" action="/logout" class="logout"><button type="submit">Log out</button></form>',
            self.reservations_section(reservations),
            self.orders_section(orders),
            self.dead_letters_section(letters),
        ])
        return self.page("200 OK", "Rewix sync", body, nonce)

    def link(self, url: str | None, text: str) -> str:
        return f'<a href="{e(url)}">{e(text)}</a>' if url else e(text)

    def reservations_section(self, rows: list[dict[str, Any]]) -> str:
        body = "".join(
            "<tr>"
            f'<td class="num">{e(r["stock_id"])}</td>'
            f'<td>{e(r["woocommerce_id"])}</td>'
            "<td>" + "<br>".join(
                f'{self.link(o["url"], "#" + (o["number"] or str(o["order_id"])))} {e(o["status"])} &times;{e(o["quantity"])}'
                + (f' <span class="muted">{e(o["sync_error"])}</span>' if o["sync_error"] else "")
                for o in r["orders"]) + "</td>"
            f'<td class="num">{e(r["needed"])}</td>'
            f'<td class="num">{e(r["locked"])}</td>'
            f'<td class="status-{e(r["sync_status"]).replace(" ", "-")}">{e(r["sync_status"])}</td>'
            "</tr>"
            for r in rows
        )
        return _section("reservations", "Reservations",
                        "What the pending and processing orders need reserved at the supplier, and what it holds.",
                        ["Remote ID", "WooCommerce ID", "Orders", "Needed", "Locked", "Sync status"], body,
                        "Nothing is reserved: no open order needs a supplier product.")

    def orders_section(self, rows: list[dict[str, Any]]) -> str:
        def status(r: dict[str, Any]) -> str:
            if r["supplier_status_name"] is None:
                return "not sent"
            return r["supplier_status_name"] + (" (cancelled in shop!)" if r["cancelled_in_shop"] else "")

        def tracking(r: dict[str, Any]) -> str:
            text = " ".join(p for p in (r["tracking_code"], f'({r["carrier_name"]})' if r["carrier_name"] else None) if p)
            if r["tracking_url"] and text:
                return self.link(r["tracking_url"], text)
            return e(text)

        body = "".join(
            "<tr>"
            f'<td>{self.link(r["url"], "#" + (r["number"] or str(r["order_id"])))}</td>'
            f'<td>{e(r["status"])}{" (deleted)" if r["deleted"] else ""}</td>'
            "<td>" + (", ".join(f'{e(l["stock_id"])} &times;{e(l["quantity"])}' for l in r["lines"]) or "none left") + "</td>"
            f'<td>{e(r["sync_status"])}</td>'
            f'<td class="num">{e(r["supplier_order_id"])}</td>'
            f'<td class="supplier-status">{e(status(r))}</td>'
            f"<td>{tracking(r)}</td>"
            f'<td>{e(format_time(r["last_synced_at"]) if r["last_synced_at"] else None)}</td>'
            f'<td>{e(r["last_error"])}</td>'
            "</tr>"
            for r in rows
        )
        return _section("orders", "Orders", "Every shop order with supplier lines and its supplier order.",
                        ["Order", "Shop status", "Supplier lines", "Sync", "Supplier order", "Supplier status",
                         "Tracking", "Last sync", "Last error"], body, "No shop order with supplier lines yet.")

    def dead_letters_section(self, rows: list[dict[str, Any]]) -> str:
        csrf = self.csrf()

        def action(r: dict[str, Any]) -> str:
            question = f'Replay dead letter #{r["id"]} to {r["queue"]}?'
            label = "Replay again" if r["replayed_at"] else "Replay"
            return (f'<form method="post" action="/dead-letters/{int(r["id"])}/replay" data-confirm="{e(question)}">'
                    f'<input type="hidden" name="csrf" value="{e(csrf)}">'
                    f'<button type="submit">{label}</button></form>')

        body = "".join(
            f'<tr data-id="{int(r["id"])}">'
            f'<td class="num">{e(r["id"])}</td>'
            f'<td>{e(r["queue"])}</td>'
            f'<td class="num">{e(r["order_id"])}</td>'
            f'<td>{e(r["reason"])}</td>'
            f'<td class="num">{e(r["attempts"])}</td>'
            f'<td>{e(iso_time(r["first_failed_at"]))}</td>'
            f'<td>{e(iso_time(r["last_failed_at"]))}</td>'
            f'<td>{e(iso_time(r["replayed_at"]))}</td>'
            f"<td>{action(r)}</td>"
            "</tr>"
            for r in rows
        )
        return _section("dead-letters", "Dead letters",
                        "Messages that failed for good. Replaying puts one back on its queue with a fresh attempt count.",
                        ["ID", "Queue", "Order", "Reason", "Attempts", "First failed", "Last failed", "Replayed", ""],
                        body, "No dead letters.")

    def page(self, status: str, title: str, body: str, nonce: str,
             headers: Iterable[tuple[str, str]] = ()) -> Response:
        document = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · rewix-sync</title>
<style nonce="{nonce}">{STYLE}</style>
</head>
<body>
<header><h1>{e(title)}</h1></header>
<main>
{body}
</main>
<script nonce="{nonce}">{SCRIPT}</script>
</body>
</html>
"""
        return Response(status, document, headers)


def _section(anchor: str, title: str, intro: str, headers: list[str], rows_html: str, empty: str) -> str:
    if not rows_html:
        table = f'<p class="empty">{e(empty)}</p>'
    else:
        head = "".join(f"<th>{e(h) if h else ''}</th>" for h in headers)
        table = f"<table><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>"
    return f'<section id="{anchor}"><h2>{e(title)}</h2><p class="intro">{e(intro)}</p>{table}</section>'


STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0 1.5rem 2rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.intro, .muted, .empty { color: #666; } .error { color: #a00; } .notice { color: #060; }
.logout { float: right; margin-top: -3rem; } form { margin: 0; }
.login { display: flex; gap: .5rem; align-items: center; }
"""

SCRIPT = """
document.querySelectorAll("form[data-confirm]").forEach(function (form) {
  form.addEventListener("submit", function (event) {
    if (!window.confirm(form.dataset.confirm)) { event.preventDefault(); }
  });
});
"""


def create_app(settings: Settings) -> AdminApp:
    return AdminApp(
        admin_token=settings.secret("admin_token"),
        database_url=settings.database_url,
        amqp_url=settings.amqp_url,
        retry_delays=settings.sync_retry_delays,
        wc_url=settings.wc_url,
    )


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

    def load(self) -> AdminApp:
        return create_app(self.settings)
