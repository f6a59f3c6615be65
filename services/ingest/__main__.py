"""`python -m services.ingest`: serve the webhook receiver on INGEST_HOST:INGEST_PORT until SIGTERM."""
from __future__ import annotations

from shared.logging import configure_logging
from shared.settings import load_settings, require

from services.ingest import metrics_directory


def main() -> None:
    # A missing WC_WEBHOOK_SECRET stops the process here with one line naming it.
    settings = require(load_settings(), "WC_WEBHOOK_SECRET")
    configure_logging(settings.log_level, settings.log_format)
    metrics_directory.prepare()  # before prometheus-client is imported
    from services.ingest.server import run

    run(settings)


if __name__ == "__main__":
    main()
