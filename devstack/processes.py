"""Services and simulators as `python -m ...` subprocesses: own process group, output in a log file.

A process group of its own means a SIGKILL takes its children with it
(gunicorn's worker would otherwise keep serving for a moment). Every process
started here and still running when the interpreter exits (normally, by an
exception, or by SIGTERM once `install_cleanup` ran) is stopped.
"""
from __future__ import annotations

import atexit
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from devstack.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
STOP_TIMEOUT = 15.0



def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on right now, for a service (or a refused connection) to take."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_running: set["Service"] = set()
_running_lock = threading.Lock()


class Service:
    """One `python -m module ARGS` process, its log in `log_dir/name.log`, restartable."""

    def __init__(self, name: str, module: str, env: dict[str, str], log_dir: Path, args: Sequence[str] = ()) -> None:
        self.name = name
        self.module = module
        self.env = env
        self.args = list(args)
        self.log_path = Path(log_dir) / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_offset = 0

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> "Service":
        assert not self.alive, f"{self.name} is already running"
        self.starts += 1
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args], cwd=ROOT, env=self.env,
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            )
        with _running_lock:
            _running.add(self)
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and everything it started (its own process group)."""
        assert self.process is not None
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait(timeout=10)
        self.reap_group()

    def stop(self, timeout: float = STOP_TIMEOUT, *, strict: bool = False) -> int | None:
        """SIGTERM, then SIGKILL to the whole group if it does not exit in time; the exit code.

        With `strict`, not stopping in time is an AssertionError (after the kill).
        """
        if self.process is None:
            return None
        late = False
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                late = True
        self.reap_group()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if late and strict:
            raise AssertionError(f"{self.name} did not stop within {timeout:g} s of SIGTERM")
        return self.process.returncode

    def reap_group(self) -> None:
        """Whatever is left of the group (a worker whose master died) goes too."""
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        with _running_lock:
            _running.discard(self)

    # -- what it printed ----------------------------------------------------------------------------

    def text(self, since_start: bool = False) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            if since_start:
                f.seek(self._log_offset)
            return f.read().decode("utf-8", "replace")

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.tail(5)}")

    def wait_for_output(self, find: Callable[[str], Any], timeout: float = 20.0) -> Any:
        """Poll the log (since the last start) until `find(line)` is truthy for a line; return that."""

        def seen() -> Any:
            for line in self.text(since_start=True).splitlines():
                found = find(line)
                if found:
                    return found
            self.check_alive()
            return None

        return wait_until(seen, timeout, f"{self.name} to start", interval=0.05)

    def announced_url(self, timeout: float = 20.0) -> str:
        """The URL a simulator prints as `listening on http://...`."""
        return self.wait_for_output(lambda line: line.startswith("listening on ") and line.split()[-1], timeout)

    def events(self, since_start: bool = True) -> list[dict[str, Any]]:
        """The JSON log lines (anything else as {"raw": line})."""
        out = []
        for raw in self.text(since_start).splitlines():
            try:
                line = json.loads(raw)
            except ValueError:
                line = {"raw": raw}
            out.append(line if isinstance(line, dict) else {"raw": raw})
        return out

    def wait_event(self, event: str, timeout: float = 30.0) -> dict[str, Any]:
        def seen() -> dict[str, Any] | None:
            if not self.alive:
                raise AssertionError(f"{self.name} exited with {self.process.returncode if self.process else None}:"
                                     f"\n{self.tail()}")
            return next((e for e in self.events() if e.get("event") == event), None)

        return wait_until(seen, timeout, f"{self.name} to log {event!r}", interval=0.05)

    def count_events(self, event: str, *, since_start: bool = False) -> int:
        return sum(1 for e in self.events(since_start) if e.get("event") == event)

    def thread_deaths(self) -> list[str]:
        """'thread: exception' for each thread an uncaught exception ended (since the last start)."""
        deaths: list[str] = []
        thread: str | None = None
        last: str | None = None
        for line in [*self.text(since_start=True).splitlines(), "{}"]:
            match = re.match(r"Exception in thread (\S+?):?$", line)
            if thread and (match or line.startswith("{")):
                deaths.append(f"{thread}: {last or '?'}")
                thread = None
            if match:
                thread, last = match.group(1), None
            elif thread and re.match(r"[A-Za-z_][\w.]*(Error|Exception|Unavailable|Exit)\b", line):
                last = line[:300]
        return deaths


def stop_all() -> None:
    """Stop every process started here that still runs."""
    with _running_lock:
        services = list(_running)
    for service in services:
        service.stop(timeout=5)


def install_cleanup() -> None:
    """Stop every started process at exit, and turn SIGTERM into a normal exit that does so."""
    atexit.register(stop_all)

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)


atexit.register(stop_all)
