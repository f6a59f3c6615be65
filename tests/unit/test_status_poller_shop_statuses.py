"""Which statuses the catch-up and the sweep name: the shop's registered ones plus trash, asked seldom."""
from __future__ import annotations

from services.status_poller.shop_watch.shop_statuses import REFRESH_SECONDS, ListedStatuses


class FakeShop:
    def __init__(self) -> None:
        self.asked = 0
        self.statuses = ["pending", "processing", "on-hold", "completed"]

    def order_statuses(self) -> list[str]:
        self.asked += 1
        return list(self.statuses)


def test_registered_statuses_plus_trash_asked_once_an_hour_or_after_a_refusal() -> None:
    now = [1000.0]
    shop = FakeShop()
    listed = ListedStatuses(shop, clock=lambda: now[0])  # type: ignore[arg-type]
    assert listed.current() == ["pending", "processing", "on-hold", "completed", "trash"]
    assert listed.current() and shop.asked == 1
    shop.statuses.append("ready-for-pickup")  # a plugin adds one
    now[0] += REFRESH_SECONDS + 1
    assert "ready-for-pickup" in listed.current() and shop.asked == 2
    shop.statuses.remove("ready-for-pickup")
    listed.forget()  # the shop refused the list
    assert "ready-for-pickup" not in listed.current() and shop.asked == 3


def test_any_and_trash_from_the_shop_are_never_doubled() -> None:
    shop = FakeShop()
    shop.statuses += ["any", "trash"]
    assert ListedStatuses(shop).current().count("trash") == 1  # type: ignore[arg-type]
    assert "any" not in ListedStatuses(shop).current()  # type: ignore[arg-type]
