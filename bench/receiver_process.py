"""Starting ingest (or the minimal receiver, on the same server) as a subprocess, and waiting until it answers."""
from __future__ import annotations

import json
from pathlib import Path

import requests

from bench.common import Service, service_env, wait_until


def listening_url(line: str) -> str | None:
    """The URL in the server's "ingest listening" log line (it binds port 0: a free port)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry.get("url") if isinstance(entry, dict) and entry.get("event") == "ingest listening" else None


def ready(url: str) -> bool:
    try:
        return requests.get(url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start_receiver(name: str, module: str, log_dir: Path, **env: str) -> tuple[Service, str]:
    """`python -m module` on 127.0.0.1 and a free port; returns the service and its base URL once ready."""
    service = Service(
        name, module, service_env(**env, INGEST_HOST="127.0.0.1", INGEST_PORT="0"), log_dir,
    )
    try:
        url = service.wait_for_output(listening_url)
        wait_until(lambda: ready(url), timeout=20, what=f"{name} /readyz")
    except BaseException:
        service.stop()
        raise
    return service, url
