"""Which local RabbitMQ node and PostgreSQL cluster serve a URL.

`rabbitmqctl` and `pg_ctlcluster` name a node or a cluster, not a port: a
machine may run more than one of each (a private pair next to the shared one,
on other ports). Whatever administers or stops a server for a URL asks here,
so it reaches the server that URL really talks to and never another one.
"""
from __future__ import annotations

import functools
import os
import socket
import subprocess
import urllib.parse

AMQP_PORT = 5672
POSTGRES_PORT = 5432


def url_port(url: str, default: int) -> int:
    return urllib.parse.urlsplit(url).port or default


@functools.lru_cache(maxsize=None)
def rabbitmq_node(amqp_url: str) -> str | None:
    """The `-n` node name for `rabbitmqctl` on the broker of `amqp_url`; None for rabbitmqctl's own default.

    RABBITMQ_NODENAME wins (rabbitmqctl reads it too). Otherwise the standard port
    is the default node, and any other port is looked up among the local nodes epmd
    knows: the one that listens for AMQP on it.
    """
    named = os.environ.get("RABBITMQ_NODENAME")
    if named:
        return named
    port = url_port(amqp_url, AMQP_PORT)
    if port == AMQP_PORT:
        return None
    for node in _local_rabbitmq_nodes():
        if amqp_port_of(node) == port:
            return node
    raise RuntimeError(f"no local RabbitMQ node listens for AMQP on port {port}: set RABBITMQ_NODENAME")


def rabbitmqctl_command(amqp_url: str, tool: str = "rabbitmqctl") -> list[str]:
    """`rabbitmqctl` (or `rabbitmq-diagnostics`) aimed at the node that serves `amqp_url`."""
    node = rabbitmq_node(amqp_url)
    return [tool, "-q"] + (["-n", node] if node else [])


def amqp_port_of(node: str | None) -> int | None:
    """The port `node` (None: the default node) listens on for AMQP, None when it does not answer."""
    command = ["rabbitmq-diagnostics", "-q"] + (["-n", node] if node else []) + ["listeners"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in done.stdout.splitlines():
        # "Interface: 127.0.0.1, port: 5672, protocol: amqp, purpose: AMQP 0-9-1 and AMQP 1.0"
        fields = dict(part.strip().split(": ", 1) for part in line.split(",") if ": " in part)
        if fields.get("protocol") == "amqp":
            return int(fields["port"])
    return None


def _local_rabbitmq_nodes() -> list[str]:
    try:
        done = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    names = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("name ")]
    hosts = ["localhost", socket.gethostname().split(".")[0]]
    return [f"{name}@{host}" for name in names for host in hosts]


def postgres_cluster(database_url: str) -> tuple[str, str]:
    """(version, name) of the local PostgreSQL cluster (Debian's pg_lsclusters) on `database_url`'s port."""
    port = url_port(database_url, POSTGRES_PORT)
    done = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True, timeout=30, check=True)
    for line in done.stdout.splitlines():
        version, name, cluster_port = line.split()[:3]
        if int(cluster_port) == port:
            return version, name
    raise RuntimeError(f"no local PostgreSQL cluster listens on port {port}")
