"""The Rewix client a process builds from its settings: the account, and the shared request budget."""
from __future__ import annotations

from shared.clients.rewix.budget import FIRST, request_budget
from shared.clients.rewix.client import RewixClient
from shared.settings import Settings


def supplier_client(settings: Settings, *, priority: str = FIRST, timeout: float = 10.0) -> RewixClient:
    """A client spending SUPPLIER_REQUESTS_PER_SECOND (through DATABASE_URL) at `priority`."""
    return RewixClient(
        settings.rewix_api_url,
        settings.rewix_api_key,
        settings.secret("rewix_api_password"),
        timeout=timeout,
        budget=request_budget(settings.database_url, settings.supplier_requests_per_second),
        priority=priority,
    )
