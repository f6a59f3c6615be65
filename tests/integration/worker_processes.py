"""Starts the real services (`python -m services.X`) as processes, for tests of what they serve."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]

REWIX_KEY, REWIX_PASSWORD = "obs-key", "obs-password"
WC_KEY, WC_SECRET = "ck_observability", "cs_observability"
WEBHOOK_SECRET = "observability-webhook-secret-0123456789abcdef"


def get(url: str, timeout: float = 5.0) -> tuple[int | None, str]:
    """(status, body) of a GET; (None, error) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError as exc:
        return None, repr(exc)


class ServiceProcess:
    """One service process; its output goes to a file so a long run cannot fill a pipe."""

    def __init__(self, module: str, env: dict[str, str], args: tuple[str, ...] = ()) -> None:
        self.module = module
        self.env = env
        self._log = tempfile.NamedTemporaryFile(prefix=f"{module}-", suffix=".log", delete=False)
        full_env = {"PATH": os.environ["PATH"], "LOG_FORMAT": "console", **env}
        self.process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=full_env,
                                        stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def port(self) -> int:
        for name in ("INGEST_PORT", "ADMIN_PORT", "METRICS_PORT"):
            if name in self.env:
                return int(self.env[name])
        raise KeyError("no port in the environment")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int | None, str]:
        return get(self.url(path))

    def output(self) -> str:
        return Path(self._log.name).read_text(errors="replace")

    def events(self, name: str) -> list[dict[str, Any]]:
        """The log records named `name`, for a process started with LOG_FORMAT=json (other lines are skipped)."""
        out = []
        for line in self.output().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == name:
                out.append(record)
        return out

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


def worker_env(database_url: str, amqp_url: str, rewix_url: str, shop_url: str, **extra: str) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "REWIX_API_URL": rewix_url,
        "REWIX_API_KEY": REWIX_KEY,
        "REWIX_API_PASSWORD": REWIX_PASSWORD,
        "WC_URL": shop_url,
        "WC_CONSUMER_KEY": WC_KEY,
        "WC_CONSUMER_SECRET": WC_SECRET,
        "SYNC_RETRY_DELAYS": "1,2",
        "POLL_INTERVAL_SECONDS": "1",
        "METRICS_PORT": str(free_port()),
    }
    env.update(extra)
    return env


def ingest_env(database_url: str, amqp_url: str, shop_url: str = "https://shop.example.com") -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "WC_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "WC_URL": shop_url,  # the shop's site: where deliveries are accepted from
        "INGEST_HOST": "127.0.0.1",
        "INGEST_PORT": str(free_port()),
        "SYNC_RETRY_DELAYS": "1,2",
    }


def admin_env(database_url: str, amqp_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "ADMIN_TOKEN": "observability-admin-token-0123456789abcdef",
        "ADMIN_HOST": "127.0.0.1",
        "ADMIN_PORT": str(free_port()),
        "INGEST_URL": "http://127.0.0.1:1",
    }
