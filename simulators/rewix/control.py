"""Client of the simulator's /_control/ endpoints, for tests, the demo and benchmarks."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import requests


class SimulatorControl:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/") + "/_control"
        self._timeout = timeout
        self._session = requests.Session()

    def _post(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        resp = self._session.post(self._base + path, json=dict(body or {}), timeout=self._timeout)
        resp.raise_for_status()
        return resp.json()

    def seed_catalog(self, models: Iterable[Mapping[str, Any]] = (), *, products: int = 0, availability: int = 1000) -> None:
        """Upsert models ({stock_id, product_id, code, barcode, availability}, optionally name, size,
        price and currency) and/or
        generate `products` products x 3 sizes with `availability` units each."""
        body: dict[str, Any] = {"models": [dict(m) for m in models]}
        if products:
            body.update(seed_products=products, availability=availability)
        self._post("/catalog", body)

    def set_status(
        self,
        order_id: int,
        status: int,
        *,
        tracking_code: str | None = None,
        tracking_url: str | None = None,
        carrier_name: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"status": status}
        for name, value in (("tracking_code", tracking_code), ("tracking_url", tracking_url), ("carrier_name", carrier_name)):
            if value is not None:
                body[name] = value
        return self._post(f"/orders/{int(order_id)}/status", body)

    def set_account(self, *, auto_confirmation: bool | None = None, e_credit: float | None = None) -> dict[str, Any]:
        """The dropshipper's account: auto-confirmation on or off, and the e-credit orders are paid from.
        An order sent with autoConfirm is created Confirmed when either covers it, else Booked."""
        body: dict[str, Any] = {}
        if auto_confirmation is not None:
            body["auto_confirmation"] = auto_confirmation
        if e_credit is not None:
            body["e_credit"] = e_credit
        return self._post("/account", body)

    def lock_by_hand(self, models: Mapping[int, int]) -> dict[int, int]:
        """Units a person adds to the growing order on the supplier's site; returns what it holds then."""
        answer = self._post("/growing_order", {"lock": {str(s): q for s, q in models.items()}})
        return {int(s): q for s, q in answer["models"].items()}

    def faults(self, **spec: Any) -> None:
        """latency_ms, status_window, fail_next, rate_limit, drop_next, poisoned_stock_ids,
        refuse_account, maintenance, failing_stock_ids, clientkey_errors, drop_after_create (see faults.py)."""
        self._post("/faults", spec)

    def refuse_account(self, status: int = 401, seconds: float | None = None) -> None:
        """Answer every request 401 (wrong credentials) or 403 (account not enabled) until `accept_account`."""
        self.faults(refuse_account={"status": status, **({"seconds": seconds} if seconds is not None else {})})

    def accept_account(self) -> None:
        self.faults(refuse_account=None)

    def clear_faults(self) -> None:
        self._post("/faults/clear")

    def state(self) -> dict[str, Any]:
        resp = self._session.get(self._base + "/state", timeout=self._timeout)
        resp.raise_for_status()
        return resp.json()

    def availability(self) -> dict[int, int]:
        resp = self._session.get(self._base + "/catalog", timeout=self._timeout)
        resp.raise_for_status()
        return {int(s): q for s, q in resp.json()["availability"].items()}

    def reset(self) -> None:
        self._post("/reset")

    def close(self) -> None:
        self._session.close()
