"""`python -m services.ingest`: serve the webhook receiver on INGEST_HOST:INGEST_PORT until SIGTERM."""
from __future__ import annotations

from shared.observability.logging import configure_logging
from shared.settings import ConfigurationError, load_settings, require
from shared.shop_state.sites import configured_sites

from services.ingest import metrics_directory


def main() -> None:
    # A missing WC_WEBHOOK_SECRET stops the process here with one line naming it.
    settings = require(load_settings(), "WC_WEBHOOK_SECRET")
    if not configured_sites(settings.wc_url, settings.wc_webhook_sources):
        # Deliveries are accepted only from the shop's site: without one, every delivery would be refused.
        what = "is not a site address" if settings.wc_url else "is required but not set"
        raise ConfigurationError(f"configuration error: WC_URL {what} "
                                 "(ingest accepts webhook deliveries only from the shop's site)")
    configure_logging(settings.log_level, settings.log_format)
    metrics_directory.prepare()  # before prometheus-client is imported
    from services.ingest.server import run

    run(settings)


if __name__ == "__main__":
    main()
