"""One run of the system on this machine: a scratch database and vhost, the simulators, the services.

    with DevStack("demo") as stack:
        rewix_url = stack.start_rewix_simulator("key", "password")
        ...
        stack.start_services(stack.service_env(REWIX_API_URL=rewix_url, ...))

The database and the vhost are named uniquely per run (or as asked), so two
runs at once do not collide; both are removed at the end unless `keep`, and
every process started is stopped, however the run ends.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Sequence

from devstack import scratch
from devstack.processes import Service

# Settings a service must not inherit from the caller's environment: each run says its own.
OWN_SETTINGS = ("REWIX_", "WC_", "SHOP_", "INGEST_", "POLL_", "SYNC_", "ADMIN_", "AMQP_", "DATABASE_", "LOG_")
SERVICES = ("ingest", "supplier_sync", "status_poller")


def service_env(drop: Sequence[str] = OWN_SETTINGS, **values: str) -> dict[str, str]:
    """This process's environment less the settings starting with `drop`, plus `values` (JSON logs, unbuffered)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop))}
    env.update({"PYTHONUNBUFFERED": "1", "LOG_FORMAT": "json"})
    env.update(values)
    return env


class DevStack:
    def __init__(self, prefix: str = "devstack", *, name: str | None = None, keep: bool = False,
                 database_url: str | None = None, amqp_url: str | None = None) -> None:
        self.name = name or scratch.unique_name(prefix)
        self.keep = keep
        self._base_database_url = database_url
        self._base_amqp_url = amqp_url or scratch.base_amqp_url()
        self.database_url = ""
        self.amqp_url = self._base_amqp_url
        self.own_vhost = False
        self.log_dir = Path(tempfile.mkdtemp(prefix=f"{prefix}-"))
        self.services: list[Service] = []
        self._resources = ExitStack()

    # -- the scratch database and vhost -------------------------------------------------------------

    def __enter__(self) -> "DevStack":
        try:
            self.database_url = self._resources.enter_context(
                scratch.scratch_database(name=self.name, base_url=self._base_database_url, keep=self.keep))
            if scratch.rabbitmqctl_available():
                self.amqp_url = self._resources.enter_context(
                    scratch.scratch_vhost(name=self.name, base_url=self._base_amqp_url, keep=self.keep))
                self.own_vhost = True
        except BaseException:
            self.close(failed=True)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close(failed=exc is not None)

    def close(self, failed: bool = False) -> None:
        """Stop every process; drop the database and vhost unless `keep`; the logs stay if kept or failed."""
        self.stop()
        try:
            from shared.db import get_engine

            get_engine.cache_clear()  # connections of this process to the database about to go
            self._resources.close()
        finally:
            if not (self.keep or failed):
                shutil.rmtree(self.log_dir, ignore_errors=True)

    # -- processes ----------------------------------------------------------------------------------

    def service_env(self, **values: str) -> dict[str, str]:
        """The environment of a service of this stack: its database and vhost, plus `values`."""
        return service_env(AMQP_URL=self.amqp_url, DATABASE_URL=self.database_url, **values)

    def spawn(self, name: str, module: str, env: dict[str, str], args: Sequence[str] = ()) -> Service:
        service = Service(name, module, env, self.log_dir, args)
        self.services.append(service)
        return service.start()

    def start_rewix_simulator(self, api_key: str, password: str, name: str = "rewix-simulator") -> str:
        """`python -m simulators.rewix` on a free port; returns its base URL."""
        service = self.spawn(name, "simulators.rewix", self.service_env(),
                             ["--host", "127.0.0.1", "--port", "0", "--api-key", api_key, "--password", password])
        return service.announced_url()

    def start_shop_simulator(self, consumer_key: str, consumer_secret: str, webhook_url: str, webhook_secret: str,
                             name: str = "shop-simulator") -> str:
        """`python -m simulators.shop` on a free port, firing signed webhooks at `webhook_url`; returns its URL."""
        service = self.spawn(name, "simulators.shop", self.service_env(), [
            "--host", "127.0.0.1", "--port", "0", "--consumer-key", consumer_key,
            "--consumer-secret", consumer_secret, "--webhook-url", webhook_url, "--webhook-secret", webhook_secret,
        ])
        return service.announced_url()

    def start_services(self, env: dict[str, str], names: Sequence[str] = SERVICES) -> list[Service]:
        """The system's services (`python -m services.<name>`) with `env`."""
        return [self.spawn(name, f"services.{name}", env) for name in names]

    def check_alive(self) -> None:
        """RuntimeError naming the first process that exited, with the end of its log."""
        for service in self.services:
            service.check_alive()

    def stop(self) -> None:
        for service in self.services:
            service.stop()
