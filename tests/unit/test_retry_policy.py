"""The one retry decision: what a failure means, and when a message is final."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from shared.failures import retry
from shared.failures.errors import PermanentError, TransientError
from shared.messaging import topology
from shared.messaging.messages import UnparseableMessage, parse_order_line, parse_status_change


def test_transient_failures_are_retried_with_what_the_other_side_asked():
    outcome = retry.outcome_of(TransientError("HTTP 503", status=503, retry_after=40.0), "supplier")
    assert outcome == retry.RetryLater("supplier: HTTP 503", 503, 40.0, kind=retry.SERVER_ERROR)


def test_permanent_failures_go_to_the_dead_letters():
    assert retry.outcome_of(PermanentError("HTTP 404", status=404)) == retry.DeadLetter("HTTP 404", 404,
                                                                                        kind=retry.REJECTED)


@pytest.mark.parametrize("parse", [parse_order_line, parse_status_change])
def test_an_unparseable_message_is_dead_lettered_with_its_first_error(parse):
    with pytest.raises(UnparseableMessage) as raised:
        parse(b'{"kind": "nonsense"}')
    outcome = retry.outcome_of(raised.value, "unparseable message")
    assert isinstance(outcome, retry.DeadLetter) and outcome.reason.startswith("unparseable message: ")


def test_the_database_down_or_a_bug_is_retried_never_dead_lettered():
    database = retry.outcome_of(OperationalError("SELECT 1", {}, Exception("connection refused")))
    assert isinstance(database, retry.RetryLater) and database.reason.startswith("database error: ")
    bug = retry.outcome_of(KeyError("oops"))
    assert isinstance(bug, retry.RetryLater) and bug.reason.startswith("handler error: ")
    assert retry.batch_failure(ValueError("x")) == retry.RetryLater("handler error: ValueError('x')",
                                                                    kind=retry.HANDLER_ERROR)


def test_the_policy_knows_when_a_message_is_final():
    policy = retry.RetryPolicy(topology.ORDER_LINES, (1, 2, 4))
    assert policy.max_attempts == 4
    later = retry.RetryLater("HTTP 503", 503)
    assert not policy.is_final(later, {})
    assert not policy.is_final(later, {retry.ATTEMPTS: 2})
    assert policy.is_final(later, {retry.ATTEMPTS: 3})
    assert policy.is_final(retry.DeadLetter("HTTP 400", 400), {})
    assert not policy.is_final(retry.Ack(), {retry.ATTEMPTS: 9})
    # is_final agrees with where the message is routed.
    for attempts in range(5):
        headers = {retry.ATTEMPTS: attempts}
        assert policy.route(later, headers).dead == policy.is_final(later, headers)


def test_both_queues_take_their_delays_from_the_queue_definition():
    class Settings:
        sync_retry_delays = [5, 30]

    assert topology.ORDER_LINES.retry_delays(Settings()) == [5, 30]
    # Status changes share the supplier's schedule.
    assert topology.STATUS_CHANGES.retry_delays(Settings()) == [5, 30]
