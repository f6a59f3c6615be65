"""CPU seconds spent by each part of a benchmark run: the receiver, PostgreSQL, RabbitMQ, the senders.

Read from /proc (utime + stime of every process, threads included) before
and after a timed run, so a benchmark can say where a webhook's cost lands
on the machine and what rate the machine's CPUs allow at those costs.
"""
from __future__ import annotations

import os
from pathlib import Path

from bench.memory import process_tree

_TICKS = os.sysconf("SC_CLK_TCK")
PARTS = ("receiver", "postgresql", "rabbitmq", "senders")
# cpu_by_process's entry for every process on the machine.
MACHINE = "machine"


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0  # gone meanwhile
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_by_part(receiver_pid: int) -> dict[str, float]:
    """CPU seconds so far of: the receiver's process tree, PostgreSQL, RabbitMQ and this process (the senders)."""
    owner = dict.fromkeys(process_tree(receiver_pid), "receiver")
    return _add_cpu(dict.fromkeys(PARTS, 0.0), owner, own="senders")


def per_webhook_ms(before: dict[str, float], after: dict[str, float], webhooks: int) -> dict[str, float]:
    return {part: (after[part] - before[part]) * 1000 / webhooks for part in PARTS}


def cpu_by_process(named: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each named process tree, of PostgreSQL, of RabbitMQ, of this process
    ("bench": what feeds and watches the run) and of the whole machine (MACHINE, every process,
    other users' included), for a benchmark that runs several services at once."""
    owner = {member: name for name, pid in named.items() for member in process_tree(pid)}
    totals = dict.fromkeys([*named, "postgresql", "rabbitmq", "bench"], 0.0)
    totals[MACHINE] = machine_cpu_seconds()
    return _add_cpu(totals, owner, own="bench")


def _add_cpu(totals: dict[str, float], owner: dict[int, str], *, own: str) -> dict[str, float]:
    """Adds every process's CPU seconds to its part: `owner`'s, `own` for this process, PostgreSQL's
    and RabbitMQ's by their command lines; other processes count nowhere."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if pid in owner:
            part: str | None = owner[pid]
        elif pid == os.getpid():
            part = own
        else:
            command = _command(pid)
            part = "postgresql" if "postgres" in command else "rabbitmq" if "beam" in command else None
        if part is not None:
            totals[part] += _cpu_seconds(pid)
    return totals


def busy_share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Each part's CPU use over `seconds` of wall time, in CPUs (1.0 = one core kept busy)."""
    return {part: (after[part] - before.get(part, 0.0)) / seconds for part in after} if seconds > 0 else {}


def machine_cpu_seconds() -> float:
    """CPU seconds every process on the machine has used so far (/proc/stat: all but idle and iowait)."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in fields[:8]]
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICKS
