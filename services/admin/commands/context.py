"""What every command shares: the settings (read once, on first use) and JSON output."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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


@contextmanager
def shop_reading_progress() -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr while the shop's open orders are read (stdout stays the report):
    yields `progress(done, total)`, shown from its first call."""
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=max(total, 1), label="reading the shop's open orders",
                                    file=click.get_text_stream("stderr"), show_pos=True)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        yield progress
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
