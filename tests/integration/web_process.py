"""`rewix-sync web` as a real process for the integration tests: gunicorn serving the operator page,
started with the run's database and vhost, and a headless Chromium to read it. The fixture that keeps
a module's pages running (`pages`) is in conftest.py."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.integration.test_admin_views import cli_env

TOKEN = "s3cretAdminTokenForTests0123456789"
ROOT = Path(__file__).resolve().parents[2]


class WebServer:
    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from services.admin.cli import main; main()", "web", "--host", "127.0.0.1"],
            cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("operator page on "):
                break
            if self.process.poll() is not None:
                raise AssertionError(f"web exited: {self.process.stderr.read()}")
        match = re.search(r"http://[\d.]+:\d+", line)
        assert match, f"no address announced: {line!r}"
        self.url = match.group(0)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(db: str, broker: str, **extra: str) -> WebServer:
    extra.setdefault("ADMIN_DEAD_LETTER_DRAIN_SECONDS", "0.5")
    return WebServer(cli_env(db, broker, ADMIN_PORT="0", **extra))


class Pages:
    """The pages a module's tests share, one gunicorn per configuration (and replica), started on first use.

    Each test's `db` and `broker` empty what a page reads (sessions and login throttling included), so a
    page serves the next test as a fresh one would, without its start.
    """

    def __init__(self) -> None:
        self.running: dict[tuple[object, ...], WebServer] = {}

    def get(self, db: str, broker: str, *, replica: int = 0, **extra: str) -> WebServer:
        key = (replica, *sorted(extra.items()))
        web = self.running.get(key)
        if web is None or web.process.poll() is not None:
            web = self.running[key] = start(db, broker, **extra)
        return web

    def close(self) -> None:
        for web in self.running.values():
            web.stop()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@contextmanager
def headless_browser() -> Iterator:
    """A headless Chromium (Debian's, as scripts/test installs it), closed on exit."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def new_page(browser) -> Iterator:
    """A page of its own (its own cookies) in `browser`, closed on exit."""
    page = browser.new_page()
    page.set_default_timeout(15_000)
    try:
        yield page
    finally:
        page.close()


@contextmanager
def headless_page() -> Iterator:
    """A page in a Chromium of its own, both closed on exit."""
    with headless_browser() as browser, new_page(browser) as page:
        yield page
