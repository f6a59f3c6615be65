"""What the shop is told about each supplier status (docs/interfaces.md, "Order lifecycle"). Pure.

Booked, Confirmed, Working on, Ready (and any other status on the way) add an
order note naming the status in English. Dispatched adds a note with the
tracking and sets the order `completed` with the tracking in its meta; where
the tracking is known it also goes to the WooCommerce Shipment Tracking plugin
(when the shop has it) and into a note the customer sees and is e-mailed
(unless SHOP_CUSTOMER_TRACKING_NOTE is false). Cancelled, Failed and the other
error codes add a note and leave the customer's order as it is: an operator
decides.
"""
from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlsplit

from shared.clients.rewix import DISPATCHED, is_final, status_name
from shared.orders.vocabulary import GIVEN_UP_STATUSES, ShopStatus

META_TRACKING_CODE = "rewix_tracking_code"
META_TRACKING_URL = "rewix_tracking_url"
META_CARRIER = "rewix_carrier"


@dataclass(frozen=True)
class TrackingItem:
    """What the Shipment Tracking plugin is given: it shows it in the customer's account and e-mails."""

    number: str
    provider: str = ""
    link: str = ""
    shipped_on: str = ""  # YYYY-MM-DD


@dataclass(frozen=True)
class ShopUpdate:
    """One status's whole effect on the shop order: a note, and maybe the completion.

    `customer_note` and `tracking` are what the customer gets on Dispatched
    (None when there is no tracking to show, or the customer note is off).
    """

    note: str
    complete: bool = False
    meta: dict[str, str] = field(default_factory=dict)
    customer_note: str | None = None
    tracking: TrackingItem | None = None


def is_error(status: int) -> bool:
    """Cancelled (2000), Failed (2001) and the other final codes that are not a dispatch."""
    return is_final(status) and status != DISPATCHED


def plan(
    supplier_order_id: int,
    status: int,
    *,
    tracking_code: str | None = None,
    tracking_url: str | None = None,
    carrier_name: str | None = None,
    shipped_on: date | None = None,
    customer_note: bool = True,
) -> ShopUpdate:
    """The shop update for a supplier order that reached `status`.

    The note texts are a function of their inputs only, so a retry can find a
    note it may already have written by comparing texts.
    """
    head = f"Supplier order {supplier_order_id} is now {status_name(status)}"
    if status == DISPATCHED:
        meta = {
            key: value.strip()
            for key, value in (
                (META_TRACKING_CODE, tracking_code),
                (META_TRACKING_URL, tracking_url),
                (META_CARRIER, carrier_name),
            )
            if value and value.strip()
        }
        details = [
            f"{label}: {meta[key]}."
            for label, key in (
                ("Tracking code", META_TRACKING_CODE),
                ("Carrier", META_CARRIER),
                ("Tracking URL", META_TRACKING_URL),
            )
            if key in meta
        ]
        if not details:
            details = ["No tracking was given."]
        code, url, carrier = (meta.get(k, "") for k in (META_TRACKING_CODE, META_TRACKING_URL, META_CARRIER))
        # What the customer is shown links only to a web page; the private note and meta keep it as given.
        link = customer_link(url)
        return ShopUpdate(
            note=" ".join([f"{head}.", *details]),
            complete=True,
            meta=meta,
            customer_note=customer_tracking_note(code, link, carrier) if customer_note and (code or link) else None,
            tracking=TrackingItem(code, carrier, link, shipped_on.isoformat() if shipped_on else "") if code else None,
        )
    if is_error(status):
        return ShopUpdate(
            note=(
                f"{head} (status {status}). The customer's order was left as it is: "
                "check the order on the supplier's platform."
            )
        )
    return ShopUpdate(note=f"{head}.")


def customer_link(url: str) -> str:
    """`url` when it is an http(s) address to show a customer, else "" (the tracking code goes alone).

    It comes from the supplier and lands in an e-mail and the customer's account: a `javascript:`
    or `data:` URL, or text posing as a link, must not reach them.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return ""
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url) or len(url) > 2000:
        return ""
    return url


def customer_tracking_note(code: str, url: str, carrier: str) -> str:
    """The note the customer reads in their account and in WooCommerce's customer-note e-mail."""
    parts = [f"Your order has been shipped{f' with {carrier}' if carrier else ''}."]
    if code:
        parts.append(f"Tracking code: {code}.")
    if url:
        parts.append(f"Follow your parcel here: {url}")
    return " ".join(parts)


def has_tracking(items: list[dict], number: str) -> bool:
    """True when the Shipment Tracking plugin already holds this tracking number for the order."""
    return any(isinstance(i, dict) and str(i.get("tracking_number") or "").strip() == number for i in items)


def completion_needed(order: dict, update: ShopUpdate) -> bool:
    """Should `update` complete this shop order, as it stands now?"""
    # A shop order given up in the shop: the supplier's dispatch is noted, but
    # the order is not turned into a completed sale.
    return update.complete and order.get("status") not in GIVEN_UP_STATUSES and not already_completed(order, update)


def already_completed(order: dict, update: ShopUpdate) -> bool:
    """True when the shop order already shows the completion `update` would write."""
    if order.get("status") != ShopStatus.COMPLETED:
        return False
    meta = {m.get("key"): m.get("value") for m in order.get("meta_data") or [] if isinstance(m, dict)}
    return all(meta.get(key) == value for key, value in update.meta.items())


def has_note(notes: list[dict], text: str) -> bool:
    """True when one of the order's notes is `text` (WordPress may have escaped or wrapped it)."""
    wanted = _normalise(text)
    return any(isinstance(n, dict) and _normalise(str(n.get("note") or "")) == wanted for n in notes)


def _normalise(text: str) -> str:
    text = html.unescape(re.sub(r"<[^>]*>", " ", text))
    return " ".join(text.split())
