"""Every process that needs WC_WEBHOOK_SECRET or ADMIN_TOKEN refuses to start with a weak one (one line naming it)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.settings import MIN_SECRET_LENGTH, PLACEHOLDER_SECRETS

ROOT = Path(__file__).resolve().parents[2]
STRONG = "Strong0123456789abcdefghijklmnopqrstuvwxyz"
CLI = [sys.executable, "-m", "services.admin.cli"]

# (process, the secret it needs, its command line)
PROCESSES = [
    ("ingest", "WC_WEBHOOK_SECRET", [sys.executable, "-m", "services.ingest"]),
    ("web", "ADMIN_TOKEN", [*CLI, "web"]),
    ("webhooks install", "WC_WEBHOOK_SECRET", [*CLI, "webhooks", "install", "--delivery-url", "http://127.0.0.1:1/x"]),
]
WEAK = {
    "short": "s3cret",
    "one too short": "x" * (MIN_SECRET_LENGTH - 1),
    "placeholder": None,  # the value .env.example ships
}


def run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k not in ("WC_WEBHOOK_SECRET", "ADMIN_TOKEN")}
    # Nothing listens on these: a process that got past its settings would fail differently, or hang.
    base.update(DATABASE_URL="postgresql://postgres@127.0.0.1:1/none", AMQP_URL="amqp://guest:guest@127.0.0.1:1/%2F",
                INGEST_HOST="127.0.0.1", INGEST_PORT="0", ADMIN_HOST="127.0.0.1", ADMIN_PORT="0",
                WC_WEBHOOK_SECRET=STRONG, ADMIN_TOKEN=STRONG)
    base.update(env)
    return subprocess.run(command, cwd=ROOT, env=base, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("process", "variable", "command"), PROCESSES, ids=[p[0] for p in PROCESSES])
@pytest.mark.parametrize("kind", sorted(WEAK))
def test_a_weak_secret_stops_the_process_at_start(process: str, variable: str, command: list[str],
                                                  kind: str) -> None:
    value = WEAK[kind] or PLACEHOLDER_SECRETS[variable]
    result = run(command, **{variable: value})
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert variable in line and value not in line
    assert "32" in line or ".env.example" in line
