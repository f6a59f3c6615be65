"""What every command shares: the settings (read once, on first use) and JSON output."""
from __future__ import annotations

import json
from typing import Any

import click

from shared.observability.logging import configure_logging
from shared.settings import Settings, load_settings


class Context:
    def __init__(self) -> None:
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        # Read on first use, so `--help` works without any setting.
        if self._settings is None:
            self._settings = load_settings()
            configure_logging(self._settings.log_level, "console")
        return self._settings


pass_context = click.make_pass_decorator(Context, ensure=True)


def emit_json(value: Any) -> None:
    from services.admin.views import jsonable

    click.echo(json.dumps(jsonable(value), indent=2, ensure_ascii=False))
