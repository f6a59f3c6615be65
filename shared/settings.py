"""Configuration from the environment (docs/interfaces.md, "Configuration").

One Settings object for every process; each process names the values it cannot
run without through `require`, which stops it at start with one line naming the
variable instead of failing later in the middle of a message.
"""
from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field, SecretStr, field_validator
from typing import Annotated

from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from shared.shop_state.sites import parse_sources


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False)

    amqp_url: str = "amqp://guest:guest@localhost:5672/%2F"
    database_url: str = "postgresql://postgres@127.0.0.1:5432/rewix_sync"

    rewix_api_url: str | None = None
    rewix_api_key: str | None = None
    rewix_api_password: SecretStr | None = None

    wc_webhook_secret: SecretStr | None = None
    wc_url: str | None = None
    # How the shop stores orders, for links to an order's admin page: posts (classic) or hpos.
    wc_order_storage: str = "posts"
    wc_consumer_key: str | None = None
    wc_consumer_secret: SecretStr | None = None
    # The public URL at which WooCommerce reaches ingest: `webhooks install` makes the webhooks
    # deliver there, and the webhook check knows the system's own webhooks by it (off without it).
    wc_webhook_delivery_url: str | None = None
    # Other addresses of the shop's own site whose webhook deliveries are accepted (a second domain),
    # comma-separated; deliveries from any other X-WC-Webhook-Source are refused (shared/shop_state/sites.py).
    wc_webhook_sources: Annotated[list[str], NoDecode] = []

    ingest_host: str = "0.0.0.0"
    ingest_port: int = 8080
    # Where `rewix-sync status` and the operator page ask ingest's /readyz (default: this machine's INGEST_PORT).
    ingest_url: str | None = None

    poll_interval_seconds: float = Field(60.0, gt=0)
    # Requests per second the poller may spend on the supplier's status endpoints.
    poll_requests_per_second: float = Field(5.0, gt=0)
    shop_catchup_interval_seconds: float = Field(300.0, ge=0)
    # How often every order that holds units or waits to be sent is checked against the shop; 0: never.
    shop_verify_interval_seconds: float = Field(900.0, ge=0)
    shop_webhook_check_interval_seconds: float = Field(300.0, ge=0)
    # The catch-up never looks at orders modified before this moment (UTC). Unset: the
    # moment of its first start, recorded in the database, so going live sends nothing old.
    shop_go_live_at: datetime | None = None
    # On Dispatched, a note the customer sees (and is e-mailed) with the carrier, code and link.
    shop_customer_tracking_note: bool = True
    # Paying the supplier (`rewix-sync pay`): where the dropshipper pays its Booked orders, how long
    # one may wait for payment before it needs a person (minutes, decimals allowed), and whether each
    # dropshipping order asks the supplier to confirm it at once from the account's e-credit.
    supplier_payment_url: str | None = None
    supplier_payment_alert_minutes: float = Field(1440.0, gt=0)
    supplier_auto_confirm: bool = False
    # The supplier's request budget, shared by every process calling it (shared/clients/rewix/budget.py):
    # a little under the 10 requests/s a Rewix platform commonly throttles at. 0: no budget at all.
    supplier_requests_per_second: float = Field(8.0, ge=0)

    # Comma-separated in the environment (5,30,120), not JSON.
    sync_retry_delays: Annotated[list[int], NoDecode] = [5, 30, 120, 600, 1800, 3600]

    # Where the workers serve /healthz, /readyz and /metrics; 0 turns the endpoints off. Unset, each
    # worker has its own (WORKER_METRICS_PORTS), so the two run side by side as plain processes.
    metrics_port: int | None = Field(None, ge=0, le=65535)
    # The address they bind: this machine only, unless a scraper elsewhere needs them (compose sets 0.0.0.0).
    metrics_host: str = "127.0.0.1"

    admin_token: SecretStr | None = None
    admin_port: int = 8081
    admin_host: str = "0.0.0.0"
    # How long a login to the operator page lasts, in hours.
    admin_session_hours: float = Field(8.0, gt=0)
    # Reverse proxies whose X-Forwarded-For / X-Forwarded-Proto the page believes (addresses or networks,
    # comma-separated); requests from anywhere else are taken at their socket's word.
    admin_trusted_proxies: Annotated[list[str], NoDecode] = []
    # How often the operator page moves the dead-letter queues into the table, in seconds.
    admin_dead_letter_drain_seconds: float = Field(2.0, gt=0)

    log_level: str = "INFO"
    log_format: str = "json"

    @field_validator("sync_retry_delays", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.split(",") if p.strip()]
            if not parts:
                raise ValueError("needs at least one delay in seconds")
            return [int(p) for p in parts]
        return value

    @field_validator("wc_webhook_sources", mode="before")
    @classmethod
    def _site_addresses(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_sources(value)  # ValueError names the address that is not one
        return value

    @field_validator("admin_trusted_proxies", mode="before")
    @classmethod
    def _address_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [p.strip() for p in value.split(",") if p.strip()]
        return value

    @field_validator("admin_trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            ipaddress.ip_network(item, strict=False)  # ValueError names the bad one
        return value

    @field_validator("sync_retry_delays")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d <= 0 for d in value):
            raise ValueError("every delay must be a positive number of seconds")
        return value

    @field_validator("wc_order_storage")
    @classmethod
    def _known_storage(cls, value: str) -> str:
        if value not in ("posts", "hpos"):
            raise ValueError("must be posts or hpos")
        return value

    @field_validator("log_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in ("json", "console"):
            raise ValueError("must be json or console")
        return value

    @field_validator("ingest_port", mode="before")
    @classmethod
    def _published_port(cls, value: object) -> object:
        # docker compose reads INGEST_PORT from .env as the port it publishes, which may name
        # the address too (127.0.0.1:8080, to keep ingest on this machine behind the TLS
        # proxy); every container reads the same .env, so take the port from that form.
        if isinstance(value, str) and ":" in value:
            return value.rsplit(":", 1)[1]
        return value

    @field_validator("shop_go_live_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A moment without an offset is UTC, as everywhere in this system.
        if value is None:
            return None
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)

    @field_validator("rewix_api_url", "wc_url")
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else value

    def worker_metrics_port(self, worker: str) -> int:
        """METRICS_PORT, or the worker's own default when it is unset."""
        return self.metrics_port if self.metrics_port is not None else WORKER_METRICS_PORTS[worker]

    def secret(self, name: str) -> str:
        value = getattr(self, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else value


# Each worker's METRICS_PORT when it is unset: distinct, so supplier_sync and status_poller started
# as plain processes on one host do not fight over one port.
WORKER_METRICS_PORTS = {"supplier_sync": 9100, "status_poller": 9101}


class ConfigurationError(SystemExit):
    """Raised at start when the environment cannot run this process."""


# WC_WEBHOOK_SECRET lets whoever knows it sign webhooks, ADMIN_TOKEN opens the operator page:
# a short value can be guessed, and the one shipped in .env.example has been read by anyone.
STRONG_SECRETS = ("WC_WEBHOOK_SECRET", "ADMIN_TOKEN")
MIN_SECRET_LENGTH = 32
# The placeholders .env.example ships (tests/unit/test_settings_logging.py holds the two files together).
PLACEHOLDER_SECRETS = {
    "WC_WEBHOOK_SECRET": "replace-with-32-or-more-random-letters-and-digits",
    "ADMIN_TOKEN": "replace-with-another-32-or-more-random-letters-and-digits",
}
HOW_TO_MAKE_ONE = "make one with `openssl rand -hex 32`"


def refuse_weak_secrets(settings: Settings, *names: str) -> Settings:
    """Stop the process with one line naming the first of these secrets that is set but weak
    (shorter than MIN_SECRET_LENGTH, or the placeholder from .env.example). Unset ones pass."""
    for name in names:
        value = settings.secret(name.lower())
        if not value:
            continue
        if value == PLACEHOLDER_SECRETS.get(name.upper()):
            raise ConfigurationError(
                f"configuration error: {name.upper()} is still the placeholder from .env.example; {HOW_TO_MAKE_ONE}")
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"configuration error: {name.upper()} is too weak: it needs at least {MIN_SECRET_LENGTH} "
                f"characters; {HOW_TO_MAKE_ONE}")
    return settings


def load_settings() -> Settings:
    try:
        return Settings()
    except SettingsError as exc:  # a value pydantic-settings could not even decode
        raise ConfigurationError(f"configuration error: {str(exc).splitlines()[0]}") from None
    except Exception as exc:  # pydantic.ValidationError: report the first problem on one line
        errors = getattr(exc, "errors", None)
        if callable(errors):
            first = errors()[0]
            name = str(first["loc"][0]).upper() if first.get("loc") else "configuration"
            raise ConfigurationError(f"configuration error: {name}: {first['msg']}") from None
        raise


def require(settings: Settings, *names: str) -> Settings:
    """Stop the process with one line naming the first missing variable, or the first weak secret."""
    for name in names:
        if not getattr(settings, name.lower()):
            raise ConfigurationError(f"configuration error: {name.upper()} is required but not set")
    return refuse_weak_secrets(settings, *(name for name in names if name.upper() in STRONG_SECRETS))
