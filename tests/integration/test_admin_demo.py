"""`rewix-sync demo`: the whole system as processes, and the feeder alone against a running stack."""
from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.parse
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from devstack import demo, scratch
from devstack.servers import rabbitmqctl_command
from devstack.stack import DevStack
from devstack.waiting import wait_until
from shared.db import normalise_url
from services.admin.cli import main
from tests.conftest import RUN_ID

ROOT = Path(__file__).resolve().parents[2]
HOOK_SECRET = "feedOnlyWebhookSecret0123456789abcdef"


def closed(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError:
        return True
    return False


def databases(database_url: str) -> set[str]:
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as c:
            return set(c.execute(text("SELECT datname FROM pg_database")).scalars())
    finally:
        engine.dispose()


def vhosts(amqp_url: str) -> set[str]:
    done = subprocess.run([*rabbitmqctl_command(amqp_url), "list_vhosts"], capture_output=True, text=True, timeout=60, check=True)
    return {line.strip() for line in done.stdout.splitlines()}


def test_demo_runs_everything_and_cleans_up(database_url: str, amqp_url: str) -> None:
    name = f"rewix_demo_{RUN_ID}"
    env = {**os.environ, "DATABASE_URL": database_url, "AMQP_URL": amqp_url, "LOG_LEVEL": "WARNING"}
    done = subprocess.run(
        [sys.executable, "-c", "from services.admin.cli import main; main()", "demo", "--name", name],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=150,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in ("reserved in the growing order", "changed from 1 to 3 units", "4 orders paid (processing), 1 cancelled",
                 "now Booked", "moved to Confirmed", "moved to Working on", "moved to Ready", "moved to Dispatched",
                 "dispatched orders are completed"):
        assert step in out, step
    assert all(re.match(r"\[ *\d+\.\d+s\] ", line) for line in out.split("\nrewix-sync reservations")[0].splitlines())

    reservations, orders = out.split("rewix-sync reservations\n")[1].split("rewix-sync orders\n")
    assert "pending x2" in reservations and "locked" in reservations  # the order nobody paid still holds stock
    order_rows = orders.strip().splitlines()[2:]
    assert len(order_rows) == 6
    assert sum("Dispatched" in row and "completed" in row for row in order_rows) == 4
    assert any("cancelled" in row and "released" in row for row in order_rows)

    # Every process it started is gone, and so are its database and vhost.
    urls = re.findall(r"http://127\.0\.0\.1:\d+", out.split("rewix-sync reservations")[0])
    assert len(set(urls)) >= 3 and all(closed(url) for url in set(urls))
    assert name not in databases(database_url)
    assert name not in vhosts(amqp_url)


def test_feed_only_drives_an_already_running_stack(database_url: str, amqp_url: str) -> None:
    """What docker compose's demo-feeder does: the services and simulators run elsewhere."""
    stack = DevStack("rewix_feed", name=f"rewix_feed_{RUN_ID}", database_url=database_url, amqp_url=amqp_url)
    with stack:
        rewix_url = stack.start_rewix_simulator("k", "p", name="rewix")
        port = demo.free_port()
        shop_url = stack.start_shop_simulator("ck_x", "cs_x", f"http://127.0.0.1:{port}/webhooks/woocommerce", HOOK_SECRET,
                                              name="shop")
        env = demo.service_env(stack, rewix_url, shop_url, port)
        env.update(REWIX_API_KEY="k", REWIX_API_PASSWORD="p", WC_CONSUMER_KEY="ck_x", WC_CONSUMER_SECRET="cs_x",
                   WC_WEBHOOK_SECRET=HOOK_SECRET)
        stack.start_services(env)
        # Already running, as in compose: ingest answers before the feeder places the first order.
        wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2).ok, 30, "ingest ready",
                   ignore=(requests.RequestException,))

        result = CliRunner().invoke(main, ["demo", "--feed-only", "--orders", "3"], env={
            "DATABASE_URL": stack.database_url, "REWIX_API_URL": rewix_url, "WC_URL": shop_url,
            "WC_CONSUMER_KEY": "ck_x", "WC_CONSUMER_SECRET": "cs_x", "LOG_LEVEL": "WARNING",
        })
        assert result.exit_code == 0, result.output + "".join(p.text() for p in stack.services)
        assert "2 orders paid (processing), 1 cancelled" in result.output
        assert "moved to Dispatched" in result.output
        rows = result.output.split("rewix-sync orders\n")[1].strip().splitlines()[2:]
        assert sum("Dispatched" in row for row in rows) == 2
    assert all(p.process.poll() is not None for p in stack.services)
    assert stack.name not in databases(database_url) and stack.name not in vhosts(amqp_url)


def test_demo_fails_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(main, ["demo", "--name", "Bad-Name"])
    assert result.exit_code == 2 and result.output.count("\n") == 1
    # The scratch database waits out a PostgreSQL restart (30 s); a port nothing listens on needs no such wait.
    monkeypatch.setattr(scratch, "RESTART_PATIENCE", 1.0)
    result = CliRunner().invoke(main, ["demo"], env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:1/x"})
    assert result.exit_code == 2 and "database unavailable" in result.output and result.output.count("\n") == 1
    result = CliRunner().invoke(main, ["demo", "--feed-only"], env={"REWIX_API_URL": "", "WC_URL": ""})
    assert result.exit_code == 2 and "REWIX_API_URL is required" in result.output
    assert CliRunner().invoke(main, ["demo", "--help"]).exit_code == 0
