"""The dev stack: two runs at once get databases and vhosts of their own, and leave nothing behind."""
from __future__ import annotations

import pytest
import requests

from devstack.stack import DevStack
from devstack.waiting import TimedOut, wait_until
from tests.integration.test_admin_demo import databases, vhosts


def test_two_stacks_at_once_do_not_collide_and_clean_up(database_url: str, amqp_url: str) -> None:
    with DevStack("devstack_test", database_url=database_url, amqp_url=amqp_url) as one, \
            DevStack("devstack_test", database_url=database_url, amqp_url=amqp_url) as two:
        assert one.name != two.name
        assert {one.name, two.name} <= databases(database_url) and {one.name, two.name} <= vhosts(amqp_url)
        assert one.database_url != two.database_url and one.amqp_url != two.amqp_url
        url = one.start_rewix_simulator("k", "p")
        assert requests.get(url + "/", timeout=5).status_code < 500
        (simulator,) = one.services
    assert simulator.process.poll() is not None
    assert not {one.name, two.name} & databases(database_url)
    assert not {one.name, two.name} & vhosts(amqp_url)


def test_wait_until_is_an_assertion_for_tests_and_a_timeout_for_scripts() -> None:
    assert wait_until(lambda: 7, 1, "a number") == 7
    with pytest.raises(AssertionError):
        wait_until(lambda: False, 0.1, "never")
    with pytest.raises(TimeoutError, match="waiting for never"):
        wait_until(lambda: False, 0.1, "never")
    calls = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("still starting")
        return True

    assert wait_until(flaky, 2, "a server", 0.01, ignore=(ConnectionError,))
    with pytest.raises(TimedOut):
        wait_until(lambda: None, 0.05)
