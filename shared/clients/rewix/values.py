"""Plain values exchanged with the Rewix platform, free of any wire format."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

# Supplier order status codes (docs/rewix-api.md §5.3). The documented ones come
# first; the rest are platform constants a dropshipper may still meet.
PENDING = 0
MONEY_WAITING = 1
CONFIRMED = 2
DISPATCHED = 3
BOOKED = 5
DROPSHIPPING = 6
PENDING_NO_LOCK = 10
WISHLIST = 11
MONEY_ERROR = 1000
CANCELLED = 2000
FAILED = 2001  # "EXCEPTION" on the server, "NOAVAILABILITY" in the plugins.
VERIFY_FAILED = 2002
REFUND = 2003
REJECTED = 2005
WORKING_ON = 3001
READY = 3002
NOT_DISPATCHABLE = 3003
MISSING_ITEMS = 3004
DISPATCH_NOT_ALLOWED = 3005
NOT_DISPATCHABLE_READY = 3006
USER_NOT_VALIDATED = 3007
WALLET_PAYMENT_SCHEDULED = 4000
NOT_AUTHORIZED = 5001
AUTHORIZED = 5002
DROPSHIPPER_GROWING = 5003
AUTHORIZED_PHOTO = 5004

STATUS_NAMES: dict[int, str] = {
    PENDING: "Pending",
    MONEY_WAITING: "Money waiting",
    CONFIRMED: "Confirmed",
    DISPATCHED: "Dispatched",
    BOOKED: "Booked",
    DROPSHIPPING: "Dropshipping",
    PENDING_NO_LOCK: "Pending (no lock)",
    WISHLIST: "Wishlist",
    MONEY_ERROR: "Money error",
    CANCELLED: "Cancelled",
    FAILED: "Failed",
    VERIFY_FAILED: "Verify failed",
    REFUND: "Refund",
    REJECTED: "Rejected",
    WORKING_ON: "Working on",
    READY: "Ready",
    NOT_DISPATCHABLE: "Not dispatchable",
    MISSING_ITEMS: "Missing items",
    DISPATCH_NOT_ALLOWED: "Dispatch not allowed",
    NOT_DISPATCHABLE_READY: "Not dispatchable (ready)",
    USER_NOT_VALIDATED: "User not validated",
    WALLET_PAYMENT_SCHEDULED: "Wallet payment scheduled",
    NOT_AUTHORIZED: "Not authorized",
    AUTHORIZED: "Authorized",
    DROPSHIPPER_GROWING: "Dropshipper growing",
    AUTHORIZED_PHOTO: "Authorized (photo)",
}


def status_name(code: int) -> str:
    """English name of a status code; an unknown code is still shown, by number."""
    return STATUS_NAMES.get(code, f"Unknown status {code}")


def is_final(code: int) -> bool:
    """True when polling can stop: dispatched, or any error code of the 2xxx range.

    3001/3002 (working on, ready) and 5 (booked) are still moving towards dispatch.
    """
    return code == DISPATCHED or 2000 <= code < 3000


@dataclass(frozen=True)
class ModelLock:
    """One model of the growing order: units reserved for us and units still free."""

    stock_id: int
    locked: int
    available: int


@dataclass(frozen=True)
class GrowingOrder:
    """The reservation. order_id 0 means the supplier has none yet."""

    order_id: int
    models: dict[int, ModelLock] = field(default_factory=dict)

    def locked(self, stock_id: int) -> int:
        """Units locked for a model; a model missing from the answer holds none."""
        model = self.models.get(stock_id)
        return model.locked if model else 0


@dataclass(frozen=True, kw_only=True)
class Recipient:
    """Where a dropshipping order ships to, in the supplier's field names.

    Built from the message's `shared.messaging.messages.ShopRecipient`.
    """

    name: str
    address_1: str
    postcode: str
    city: str
    countrycode: str
    careof: str = ""
    phone: str = ""
    address_2: str = ""
    province: str = ""
    notes: str = ""

    @property
    def street(self) -> str:
        """The whole street as the supplier's one `street_name` holds it (docs/rewix-api.md §4.3)."""
        return " ".join(part.strip() for part in (self.address_1, self.address_2) if part.strip())


@dataclass(frozen=True)
class DropshippingOrder:
    """A real order shipped to the end customer. key is our unique reference."""

    key: str
    date: datetime
    recipient: Recipient
    items: dict[int, int]  # stock_id -> quantity
    # Ask the supplier to confirm it at once (from the account's e-credit, or its auto-confirmation);
    # otherwise it waits in Booked for the dropshipper's payment.
    auto_confirm: bool = False


@dataclass(frozen=True)
class SupplierOrderStatus:
    """What the supplier says about one of its orders."""

    order_id: int
    key: str | None
    status: int
    substatus: int | None = None
    last_update: str | None = None
    tracking_code: str | None = None
    tracking_url: str | None = None
    carrier_name: str | None = None

    @property
    def status_name(self) -> str:
        return status_name(self.status)

    @property
    def is_final(self) -> bool:
        return is_final(self.status)


@dataclass(frozen=True)
class CatalogModel:
    """One orderable variant; stock_id is the only reliable identity (§6)."""

    stock_id: int
    product_id: int
    code: str
    barcode: str
    availability: int
    name: str = ""  # the product's name
    size: str = ""
    # What the dropshipper pays for one unit, before VAT, in `currency`; None when the export gives none.
    price: Decimal | None = None
    currency: str = ""


@dataclass(frozen=True)
class Catalog:
    """A catalog download. last_update is what to pass as `since` next time."""

    last_update: str | None
    models: list[CatalogModel] = field(default_factory=list)
