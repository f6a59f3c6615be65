"""Splitting a refused batch until the culprit is alone (services/supplier_sync/recording.py), with plain functions."""
from __future__ import annotations

import pytest

from shared.failures import retry
from services.supplier_sync.recording import split_until_alone


class Refused(Exception):
    pass


def refusal_of(exc: BaseException) -> retry.DeadLetter | None:
    return retry.DeadLetter(str(exc)) if isinstance(exc, Refused) else None


def recorder(poisoned: set[int], calls: list[list[int]]):
    def attempt(positions: list[int]) -> list[int]:
        calls.append(positions)
        bad = poisoned & set(positions)
        if bad:
            raise Refused(f"refused {min(bad)}")
        return positions
    return attempt


@pytest.mark.parametrize("size, poisoned", [(1, set()), (21, {10}), (200, {0, 199}), (7, {0, 1, 2, 3, 4, 5, 6}), (1, {0})])
def test_only_the_culprits_are_refused_and_every_other_position_is_recorded_once(size, poisoned):
    calls: list[list[int]] = []
    done, refused = split_until_alone(list(range(size)), recorder(poisoned, calls), refusal_of)
    recorded = sorted(p for positions, _ in done for p in positions)
    assert recorded == sorted(set(range(size)) - poisoned)
    assert refused == {p: retry.DeadLetter(f"refused {p}") for p in poisoned}


def test_one_culprit_in_200_costs_a_few_attempts_not_one_per_message():
    calls: list[list[int]] = []
    split_until_alone(list(range(200)), recorder({57}, calls), refusal_of)
    assert len(calls) <= 2 * 8 + 1  # two halves per level of a binary split of 200


def test_a_failure_that_is_no_refusal_fails_the_whole_batch():
    def attempt(positions: list[int]) -> None:
        if len(positions) < 4:
            raise ConnectionError("the database went away")
        raise Refused("refused")

    with pytest.raises(ConnectionError):
        split_until_alone(list(range(8)), attempt, refusal_of)
