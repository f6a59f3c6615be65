"""Waiting for a condition, with a deadline: the one loop the demo, the benchmarks and the tests share."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class TimedOut(AssertionError, TimeoutError):
    """The condition did not hold in time: a failed assertion for a test, a TimeoutError for a script."""


def wait_until(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition", interval: float = 0.05,
               *, ignore: tuple[type[BaseException], ...] = ()) -> Any:
    """Poll `condition` until it returns something truthy (returned) or `timeout` seconds pass (TimedOut).

    Exceptions of the types in `ignore` count as "not yet" (a server still starting).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except ignore:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimedOut(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
