"""Fixtures several unit modules share."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import WebhookReceiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """A webhook endpoint for the module's shop simulator to deliver to."""
    r = WebhookReceiver()
    yield r
    r.close()
