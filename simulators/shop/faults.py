"""Injected misbehaviour of the shop's REST writes: latency, failed notes, failed updates, failed batch items.

Not thread-safe by itself: ShopState calls it under its one lock. Reads are never faulted.
"""
from __future__ import annotations

from typing import Any

from simulators.shop.wire import ApiError

FAULT_KINDS = ("fail_notes", "fail_updates")


class WriteFaults:
    """The armed faults by kind, each with a count of the writes it still spoils."""

    def __init__(self) -> None:
        self._armed: dict[str, dict[str, Any]] = {}
        self._item_faults: dict[int, dict[str, Any]] = {}  # order id -> the fault its batch items meet
        self.latency_ms = 0

    def arm(self, spec: dict[str, Any]) -> None:
        """{"fail_notes"|"fail_updates": {"status", "count", "retry_after"?, "after_write"?}, "latency_ms"?}.
        after_write=true applies the write and then fails, like a PHP fatal in a hook after the save.
        {"fail_batch_items": {"order_ids": [...], "status", "code"?, "message"?, "count"}} makes the update of
        each of those orders inside POST /orders/batch answer an error entry, `count` times per order, while
        the batch's other items are saved."""
        for kind in FAULT_KINDS:
            if kind in spec:
                fault = dict(spec[kind])
                fault["status"] = int(fault.get("status", 500))
                fault["count"] = int(fault.get("count", 1))
                self._armed[kind] = fault
        if "fail_batch_items" in spec:
            fault = dict(spec["fail_batch_items"])
            for order_id in fault.pop("order_ids", []):
                self._item_faults[int(order_id)] = {**fault, "status": int(fault.get("status", 500)),
                                                    "count": int(fault.get("count", 1))}
        if "latency_ms" in spec:
            self.latency_ms = int(spec["latency_ms"])

    def clear(self) -> None:
        self._armed.clear()
        self._item_faults.clear()
        self.latency_ms = 0

    def take(self, kind: str) -> dict[str, Any] | None:
        """The armed fault of this kind, counting one use of it, or None."""
        fault = self._armed.get(kind)
        if not fault or fault["count"] <= 0:
            return None
        fault["count"] -= 1
        return dict(fault)


    def take_item(self, order_id: int) -> dict[str, Any] | None:
        """The fault armed for this order's batch item, counting one use of it, or None."""
        fault = self._item_faults.get(order_id)
        if not fault or fault["count"] <= 0:
            return None
        fault["count"] -= 1
        return dict(fault)


def fault_error(fault: dict[str, Any]) -> ApiError:
    headers = {"Retry-After": str(fault["retry_after"])} if "retry_after" in fault else {}
    if fault["status"] == 429:
        return ApiError(429, "too_many_requests", "Too many requests.", headers=headers)
    return ApiError(fault["status"], "internal_server_error",
                    "<p>There has been a critical error on this website.</p>", headers=headers)
