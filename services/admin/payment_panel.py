"""The operator page's payments section: `rewix-sync pay`'s report, kept for a short while.

The check reads the shop's open orders and the supplier's growing order, so
the report is built at most every `ttl` seconds, one build at a time. When the
check cannot be made (the supplier's settings missing, the supplier or the shop
down) the section still lists what waits for payment, and says why it is not
checked; the page never fails for it.
"""
from __future__ import annotations

import threading
import time

from shared.db import get_engine
from shared.observability.logging import get_logger
from shared.orders.payment_waits import alert_after_seconds
from shared.settings import Settings
from services.admin import payments
from services.admin.clients import rewix_client, shop_client

log = get_logger("admin.payments")

TTL = 60.0
NO_SUPPLIER = "the check needs the supplier's settings (REWIX_API_URL, REWIX_API_KEY, REWIX_API_PASSWORD)"


class PaymentPanel:
    def __init__(self, settings: Settings, ttl: float = TTL) -> None:
        self.settings = settings
        self.ttl = ttl
        self._lock = threading.Lock()
        self._report: payments.PaymentReport | None = None
        self._built_at = 0.0

    def current(self) -> payments.PaymentReport:
        with self._lock:
            if self._report is None or time.monotonic() - self._built_at >= self.ttl:
                self._report = self._build()
                self._built_at = time.monotonic()
            return self._report

    def _build(self) -> payments.PaymentReport:
        settings = self.settings
        if not (settings.rewix_api_url and settings.rewix_api_key and settings.rewix_api_password):
            return self._unchecked(NO_SUPPLIER)
        supplier = rewix_client(settings)
        shop = shop_client(settings) if payments.shop_keys_set(settings) else None
        try:
            return payments.build(settings, supplier, shop)
        except Exception as exc:  # the supplier, the shop or the database failing: say so, list what waits
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            log.warning("payment check not made", error=reason)
            return self._unchecked(f"the check could not be made: {reason}")
        finally:
            supplier.close()

    def _unchecked(self, why: str) -> payments.PaymentReport:
        alert_after = alert_after_seconds(self.settings.supplier_payment_alert_minutes)
        with get_engine(self.settings.database_url).connect() as connection:
            orders = payments.read_waiting(connection, alert_after)
            connection.rollback()
        return payments.PaymentReport(orders, [], None, alert_after, self.settings.supplier_payment_url, [why])
