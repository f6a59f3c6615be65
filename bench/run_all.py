"""Run every benchmark and write bench/RESULTS.md (`python -m bench.run_all`), or rerun some
(`python -m bench.run_all bench.rush`) and replace only their sections.

Each benchmark measures its own baseline in the same run and prints its
targets as PASS/FAIL; this script only runs them one after another (never in
parallel: the machine is small and noisy) and keeps what they printed, with
when each ran and the machine it ran on.
"""
from __future__ import annotations

import os
import platform
import re
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


def main(names: list[str] | None = None) -> int:
    """Every benchmark, or only those named (`python -m bench.run_all bench.rush`): a rerun replaces
    their sections of RESULTS.md and keeps the others, each section saying when it ran."""
    names = sys.argv[1:] if names is None else names
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark: {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})", file=sys.stderr)
        return 2
    sections = previous_sections() if names else {}
    failed = False
    for module in names or BENCHMARKS:
        print(f"== {module}", flush=True)
        started = time.monotonic()
        ran_at = datetime.now(timezone.utc)
        proc = subprocess.run([sys.executable, "-m", module], capture_output=True, text=True)
        output = proc.stdout + (f"\n(stderr)\n{proc.stderr[-3000:]}" if proc.returncode else "")
        print(output, flush=True)
        met = proc.returncode == 0 and "FAIL" not in proc.stdout
        failed |= not met
        sections[module] = (
            f"## {module}\n\n{'all targets met' if met else 'TARGETS NOT MET or the benchmark failed'}"
            f" (exit {proc.returncode}, {time.monotonic() - started:.0f} s, run {ran_at:%Y-%m-%d %H:%M} UTC)"
            f"\n\n```\n{output.strip()}\n```\n"
        )
    RESULTS.write_text(
        "# Benchmark results\n\n"
        f"Run on {machine()}, by `python -m bench.run_all`; each section says when its benchmark ran.\n"
        "Every figure stands next to the baseline measured in the same run.\n\n"
        + "\n".join(sections[module] for module in BENCHMARKS if module in sections)
    )
    print(f"wrote {RESULTS}")
    return 1 if failed else 0


def previous_sections() -> dict[str, str]:
    """The sections of the RESULTS.md on disk, by benchmark."""
    if not RESULTS.exists():
        return {}
    parts = re.split(r"^## (bench\.\w+)\n", RESULTS.read_text(), flags=re.M)
    return {parts[i]: f"## {parts[i]}\n{parts[i + 1].rstrip()}\n" for i in range(1, len(parts) - 1, 2)}


if __name__ == "__main__":
    raise SystemExit(main())
