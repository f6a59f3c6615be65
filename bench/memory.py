"""Peak memory of a service while a benchmark runs: its process and every process it started.

RSS is read from /proc every SAMPLE_SECONDS. For a service of several
processes (ingest: gunicorn's master and its workers) the figure is the sum
of their RSS, which counts pages they share (the interpreter, libraries)
once per process: an upper bound. The sum of their PSS (shared pages split
between the processes sharing them) is kept next to it.
"""
from __future__ import annotations

import threading
from pathlib import Path

SAMPLE_SECONDS = 0.1


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def process_tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(_children(current))
    return pids


def _kib(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def tree_memory(pid: int) -> tuple[int, int, int]:
    """(summed RSS, summed PSS, processes) of the tree, in bytes."""
    pids = process_tree(pid)
    rss = sum(_kib(f"/proc/{p}/status", "VmRSS:") for p in pids)
    pss = sum(_kib(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
    return rss * 1024, pss * 1024, len(pids)


class PeakMemory(threading.Thread):
    """Samples a service's process tree until stopped; keeps the peaks."""

    def __init__(self, name: str, pid: int) -> None:
        super().__init__(name=f"memory-{name}", daemon=True)
        self.service = name
        self.pid = pid
        self.peak_rss = 0
        self.peak_pss = 0
        self.processes = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(SAMPLE_SECONDS)

    def sample(self) -> None:
        rss, pss, processes = tree_memory(self.pid)
        if rss > self.peak_rss:
            self.peak_rss, self.processes = rss, processes
        self.peak_pss = max(self.peak_pss, pss)

    def stop(self) -> dict[str, float | int]:
        self._halt.set()
        self.sample()
        return {"rss_mb": self.peak_rss / 2**20, "pss_mb": self.peak_pss / 2**20, "processes": self.processes}
