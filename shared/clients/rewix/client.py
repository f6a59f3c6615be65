"""HTTP client of the Rewix platform: one method per endpoint, typed failures.

Every failure leaves as a TransientError (worth retrying), a PermanentError
(dead letter) or an AccountRefused (401/403: the workers pause), decided in one
place (_request / _raise_for_status / _parsed). Bodies are built and parsed by
shared.clients.rewix.xml only.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NewConnectionError

from shared.failures.errors import (
    SUPPLIER, AccountRefused, AmbiguousLookup, ConnectionFailed, PermanentError, TimedOut, TransientError,
    parse_retry_after, refuses_credentials,
)
from shared.clients.http_body import MIB, BodyTooLarge, read_bounded
from shared.clients.rewix import xml as wire
from shared.clients.rewix.budget import FIRST, RequestBudget, Unlimited
from shared.clients.rewix.values import Catalog, DropshippingOrder, GrowingOrder, SupplierOrderStatus
from shared.observability.metrics import record_supplier_call, supplier_endpoint

T = TypeVar("T")

XML = "application/xml"
# The largest answer read: the full catalog of a big supplier is a few MiB of XML.
MAX_BODY = 64 * MIB


class IncrementalWindowExpired(PermanentError):
    """The catalog refused `since` (HTTP 412): download the full catalog instead."""


class RewixClient:
    """Talks to one supplier account. Thread-safe as far as requests.Session is."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        password: str,
        timeout: float = 10.0,
        session: requests.Session | None = None,
        *,
        budget: RequestBudget | None = None,
        priority: str = FIRST,
    ) -> None:
        # Every request spends the account's shared budget (budget.py) at this client's priority:
        # FIRST for the growing order's locks and the operator, LEFTOVER for sends and polls.
        self._budget = budget or Unlimited()
        self._priority = priority
        self._base = base_url.rstrip("/")
        self._auth = (api_key, password)
        self._timeout = timeout
        if session is None:
            session = requests.Session()
            # Workers call from several threads; keep one warm connection each.
            session.mount("http://", HTTPAdapter(pool_maxsize=32))
            session.mount("https://", HTTPAdapter(pool_maxsize=32))
        self._session = session

    def __repr__(self) -> str:
        # Never show the password, not even in a debugger or a log of locals.
        return f"RewixClient({self._base!r}, api_key={self._auth[0]!r})"

    def close(self) -> None:
        self._session.close()

    # --- growing order (§3) ---------------------------------------------------

    def get_growing_order(self) -> GrowingOrder:
        """The whole reservation. The trailing slash is what every client sends."""
        resp = self._request("GET", "/restful/ghost/orders/dropshipping/locked/")
        return _parsed(resp, wire.parse_lock_response)

    def modify_growing_order(
        self,
        *,
        set: Mapping[int, int] | None = None,  # noqa: A002 - the protocol's own word
        lock: Mapping[int, int] | None = None,
        unlock: Mapping[int, int] | None = None,
    ) -> GrowingOrder:
        """Lock/unlock relative amounts, set absolute ones; returns the whole reservation.

        A short lock is not an error on the wire (§3.3): compare the returned
        `locked` with what was asked; a model missing from the answer holds 0.
        """
        body = wire.build_lock_request(set=set, lock=lock, unlock=unlock)
        resp = self._request("POST", "/restful/ghost/orders/sold", body=body)
        return _parsed(resp, wire.parse_lock_response)

    # --- orders (§4, §5) ------------------------------------------------------

    def send_dropshipping_order(self, order: DropshippingOrder) -> None:
        """Create the order. The answer is not the new order (§4.5): look it up by key."""
        body = wire.build_dropshipping_order(order)
        self._request("POST", "/restful/ghost/orders/0/dropshipping", body=body)

    def find_order_by_key(self, key: str) -> SupplierOrderStatus | None:
        """The order sent under our key, or None when the supplier says 404.

        A 500 raises AmbiguousLookup: older servers answer it for "no such key"
        (§5.1), but so does any server failing, so it proves nothing either
        way. An answer about an order whose `ext_ref` is not our key is not
        our order.
        """
        path = f"/restful/ghost/clientorders/clientkey/{path_segment(key)}"
        try:
            found = self._lookup(path, not_found=(404,))
        except TransientError as exc:
            if exc.status == 500:
                raise AmbiguousLookup(
                    f"lookup of key {key!r} answered 500: the order may or may not exist",
                    status=500,
                    body=exc.body,
                ) from exc
            raise
        return found if found is not None and found.key == key else None

    def get_order(self, order_id: int) -> SupplierOrderStatus | None:
        """The order with the supplier's id, or None on 404."""
        return self._lookup(f"/restful/ghost/clientorders/serverkey/{int(order_id)}", not_found=(404,))

    def _lookup(self, path: str, *, not_found: tuple[int, ...]) -> SupplierOrderStatus | None:
        try:
            resp = self._request("GET", path)
        except (PermanentError, TransientError) as exc:
            if exc.status in not_found:
                return None
            raise
        statuses = _parsed(resp, wire.parse_order_statuses)
        return statuses[0] if statuses else None

    # --- catalog (§6) -----------------------------------------------------------

    def download_catalog(self, *, since: str | None = None, locales: str = "en_US,it_IT") -> Catalog:
        """Full catalog, or the changes since a previous answer's last_update.

        Raises IncrementalWindowExpired when `since` is too old (412).
        """
        params = {"v": "TEAL", "acceptedlocales": locales, "addtags": "true"}
        if since is not None:
            params["since"] = since
        try:
            resp = self._request("GET", "/restful/export/api/products.json", params=params, accept="application/json")
        except PermanentError as exc:
            if exc.status == 412:
                raise IncrementalWindowExpired(
                    f"catalog: incremental window expired for since={since}", status=412, body=exc.body
                ) from exc
            raise
        return _parsed(resp, wire.parse_catalog)

    # --- transport ----------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: Mapping[str, str] | None = None,
        accept: str = XML,
    ) -> requests.Response:
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = XML
        what = f"{method} {path}"
        # Only a POST changes anything at the supplier: a GET is always safe to repeat.
        may_have_acted = method != "GET"
        endpoint = supplier_endpoint(method, path)
        self._budget.spend(self._priority)
        started = time.monotonic()
        answer: int | str = "error"
        try:
            prepared = self._session.prepare_request(
                requests.Request(method, self._base + path, data=body, params=params, headers=headers, auth=self._auth)
            )
            # requests un-escapes %2E and then drops dot segments: put back the
            # path exactly as quoted, so a key "." or ".." stays a key.
            query = urlsplit(prepared.url or "").query
            prepared.url = self._base + path + (f"?{query}" if query else "")
            settings = self._session.merge_environment_settings(prepared.url, {}, None, None, None)
            resp = self._session.send(
                prepared,
                timeout=self._timeout,
                # A redirect would drop or resend credentials and turn a POST into
                # a GET; a base URL that redirects is a configuration error.
                allow_redirects=False,
                **{**settings, "stream": True},
            )
            answer = resp.status_code
            # Read whole here, and bounded, so a cut body fails inside this try.
            read_bounded(resp, MAX_BODY)
        except requests.ConnectTimeout as exc:
            answer = "timeout"
            raise TimedOut(f"{what}: connect timeout: {exc}") from exc
        except requests.Timeout as exc:
            answer = "timeout"
            raise TimedOut(f"{what}: timeout: {exc}", outcome_unknown=may_have_acted) from exc
        except requests.ConnectionError as exc:
            answer = "connection_error"
            sent = not _never_connected(exc)
            raise ConnectionFailed(f"{what}: connection error: {exc}", outcome_unknown=may_have_acted and sent) from exc
        except BodyTooLarge as exc:
            raise TransientError(f"{what}: {exc}", status=answer if isinstance(answer, int) else None,
                                 outcome_unknown=may_have_acted) from None
        except requests.exceptions.ChunkedEncodingError as exc:
            answer = "connection_error"
            raise ConnectionFailed(f"{what}: answer cut short: {exc}", outcome_unknown=may_have_acted) from exc
        except requests.RequestException as exc:
            # Invalid URL and the like: no retry can fix the configuration.
            raise PermanentError(f"{what}: {exc}") from exc
        finally:
            # Every call is counted here, whatever its outcome: one place for the supplier's metrics.
            record_supplier_call(endpoint, answer, time.monotonic() - started)
        _raise_for_status(what, resp)
        return resp


def path_segment(text: str) -> str:
    """`text` as one path segment: every reserved character and every dot escaped.

    Dots are escaped too because "." and ".." are not names in a URL path
    but moves within it.
    """
    return quote(text, safe="").replace(".", "%2E")


def _never_connected(exc: BaseException) -> bool:
    """True when the connection was never made (refused, DNS), so nothing was sent."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, NewConnectionError):
            return True
        todo.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        todo.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return False


def _raise_for_status(what: str, resp: requests.Response) -> None:
    """The one mapping from an HTTP status to a typed error (architecture: retry on type)."""
    code = resp.status_code
    if 200 <= code < 300:
        return
    # Error bodies are plain text (§4.6); keep an excerpt for the dead letter's reason.
    text = resp.text[:500]
    reason = f"{what}: HTTP {code}: {text.strip()[:200]}"
    if refuses_credentials(code):
        raise AccountRefused(
            f"{what}: HTTP {code}: the supplier refuses the account (check REWIX_API_KEY, REWIX_API_PASSWORD "
            "and that the account is enabled for dropshipping)",
            status=code,
            body=text,
            account=SUPPLIER,
        )
    if code == 429:
        raise TransientError(reason, status=code, body=text, retry_after=parse_retry_after(resp.headers.get("Retry-After")))
    if code >= 500:
        raise TransientError(reason, status=code, body=text)
    if 300 <= code < 400:
        reason = f"{what}: unexpected redirect {code} to {resp.headers.get('Location')!r}: check the base URL"
    raise PermanentError(reason, status=code, body=text)


def _parsed(resp: requests.Response, parse: Callable[[bytes], T]) -> T:
    """Parse a 2xx body; one that does not parse is transient, with an excerpt of what came.

    A 2xx that is not the protocol is a maintenance page, a proxy or a captive
    portal answering for the supplier: it passes, as the shop client treats it.
    """
    try:
        return parse(resp.content)
    except PermanentError as exc:
        excerpt = " ".join(resp.text[:200].split())
        raise TransientError(
            f"{resp.request.method} {urlsplit(resp.url).path}: HTTP {resp.status_code} "
            f"({resp.headers.get('Content-Type', 'no content type')}) that does not parse: {exc.reason[:150]}; "
            f"it began: {excerpt!r}",
            status=resp.status_code,
            body=exc.body,
        ) from exc
