"""The copy of the recorded WooCommerce traffic kept in the repository is the recording itself, byte for byte."""
from __future__ import annotations

import pytest

from tests.recordings import places


@pytest.mark.parametrize("name", ["README.md", "webhooks.jsonl", "rest.json"])
def test_the_copy_in_the_repository_equals_the_recording_beside_it(name: str) -> None:
    beside, copy = places(name)
    assert copy.is_file(), f"{copy} is missing"
    if beside.is_file():  # a clone made beside the recordings (elsewhere the copy stands in): they agree
        assert copy.read_bytes() == beside.read_bytes()
