"""Run every benchmark and write bench/RESULTS.md.

Each benchmark measures its own baseline in the same run and prints its
targets as PASS/FAIL; this script only runs them one after another (never in
parallel: the machine is small and noisy) and keeps what they printed, with
the date and the machine it ran on.
"""
from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

BENCHMARKS = ["bench.ingest", "bench.pipeline", "bench.poller", "bench.shop_load", "bench.scale_out", "bench.admin",
              "bench.rush"]
RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    memory = ""
    try:
        with open("/proc/meminfo") as f:
            memory = f" {int(f.readline().split()[1]) // 1024 // 1024} GiB,"
    except OSError:
        pass
    return f"{platform.machine()}, {os.cpu_count()} cores,{memory} Python {platform.python_version()}, {platform.system()} {platform.release()}"


def main() -> int:
    sections = []
    failed = False
    for module in BENCHMARKS:
        print(f"== {module}", flush=True)
        started = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True)
        output = proc.stdout + (f"\n(stderr)\n{proc.stderr[-3000:]}" if proc.returncode else "")
        print(output, flush=True)
        met = proc.returncode == 0 and "FAIL" not in proc.stdout
        failed |= not met
        sections.append(
            f"## {module}\n\n{'all targets met' if met else 'TARGETS NOT MET or the benchmark failed'}"
            f" (exit {proc.returncode}, {time.monotonic() - started:.0f} s)\n\n```\n{output.strip()}\n```\n"
        )
    RESULTS.write_text(
        "# Benchmark results\n\n"
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine()}, by `python -m bench.run_all`.\n"
        "Every figure stands next to the baseline measured in the same run.\n\n" + "\n".join(sections)
    )
    print(f"wrote {RESULTS}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
