"""The pipeline benchmark's targets, judged on its runs, and the table it prints."""
from __future__ import annotations

from typing import Any

from bench.common import fmt_ms
from bench.pipeline_result import RunResult

TARGET_CALLS_PER_LINE = 0.2
TARGET_SPEEDUP = 10.0
TARGET_LATENCY_MS = 50
TARGET_MEMORY_MB = 150
MEMORY_JUDGED = ("ingest", "supplier_sync")  # the services; the naive worker is the baseline


def targets(runs: list[RunResult]) -> list[dict[str, Any]]:
    by = {(r.worker, r.latency_ms): r for r in runs if r.feed == "webhooks"}
    sync, naive = by.get(("supplier_sync", TARGET_LATENCY_MS)), by.get(("naive", TARGET_LATENCY_MS))
    if sync is None:
        return []
    calls = sync.calls_per_line
    need = naive.lines_per_s * TARGET_SPEEDUP if naive and naive.lines_per_s else None
    judged = [
        {"name": f"supplier calls per line at {TARGET_LATENCY_MS} ms <= {TARGET_CALLS_PER_LINE}",
         "value": calls, "limit": TARGET_CALLS_PER_LINE,
         "passed": calls is not None and calls <= TARGET_CALLS_PER_LINE and sync.exact},
        {"name": f"lines/s at {TARGET_LATENCY_MS} ms >= {TARGET_SPEEDUP:g} x naive",
         "value": sync.lines_per_s, "limit": need,
         "passed": need is not None and sync.lines_per_s is not None and sync.lines_per_s >= need},
        {"name": f"final locks exact at {TARGET_LATENCY_MS} ms", "value": sync.exact, "limit": True,
         "passed": sync.exact},
    ]
    for service in MEMORY_JUDGED:
        peaks = [r.memory[service]["rss_mb"] for r in runs if service in r.memory]
        peak = max(peaks) if peaks else None
        judged.append({"name": f"{service} peak RSS under the pipeline burst ≤ {TARGET_MEMORY_MB} MB each",
                       "value": peak, "limit": float(TARGET_MEMORY_MB),
                       "passed": peak is not None and peak <= TARGET_MEMORY_MB})
    return judged


def report(figures: dict[str, Any]) -> list[str]:
    lines = []
    header = (f"{'feed':<8} {'latency':>7}  {'worker':<13} {'orders':>6} {'lines':>5} {'lines/s':>8} {'calls/line':>10} "
              f"{'p50':>8} {'p95':>8} {'p99':>8}  exact")
    lines += ["", header, "-" * len(header)]
    for r in figures["runs"]:
        rate = f"{r['lines_per_s']:,.1f}" if r["lines_per_s"] else "-"
        calls = f"{r['calls_per_line']:.3f}" if r["calls_per_line"] is not None else "-"
        lines.append(
            f"{r['feed']:<8} {str(r['latency_ms']) + ' ms':>7}  {r['worker']:<13} {r['orders']:>6} {r['lines']:>5} "
            f"{rate:>8} {calls:>10} "
            f"{fmt_ms(r['latency_p50']):>8} {fmt_ms(r['latency_p95']):>8} {fmt_ms(r['latency_p99']):>8}  "
            f"{'yes' if r['exact'] else 'NO'}"
        )
    lines.append("")
    for r in figures["runs"]:
        lines.append(" ".join(_details(r)))
        for problem in r["problems"]:
            lines.append(f"    problem: {problem}")
    naive_sizes = figures["config"]["naive_orders"]
    if naive_sizes:
        lines.append("naive worker burst: " + ", ".join(f"{n} orders at {l} ms" for l, n in sorted(naive_sizes.items()))
                     + " (smaller, to bound its run time; rates are per line, so comparable)")
    lines.append("feed webhooks: signed webhooks through ingest; feed queue: ingest's messages published straight "
                 "onto the work queue (the worker's own rate)")
    lines.append("latency = line locked (supplier_sync: DB trigger stamp; naive: supplier's answer) - webhook answered "
                 "200 (queue feed: its messages confirmed)")
    lines.append("memory: peak of the summed RSS of the service's processes (ingest: gunicorn master and workers), "
                 "sampled every 0.1 s; PSS counts shared pages once")
    before, after = figures["config"]["load_average"]
    lines.append(f"benchmark time {figures['seconds']:.0f} s; 1-minute load average {before:.1f} before, {after:.1f} after "
                 f"(other work on the machine shares its {figures['config']['cpus']} CPUs)")
    lines.append("")
    if not figures["targets"]:
        lines.append(f"no targets checked: they apply at {TARGET_LATENCY_MS} ms, which was not run")
    for t in figures["targets"]:
        value = t["value"]
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        limit = f"{t['limit']:,.3f}" if isinstance(t["limit"], float) else str(t["limit"])
        ratio = (f", ratio {value / t['limit']:.2f}" if isinstance(value, float) and isinstance(t["limit"], float)
                 and t["limit"] else "")
        lines.append(f"{'PASS' if t['passed'] else 'FAIL'}  {t['name']}: {shown} (limit {limit}{ratio})")
    return lines


def _details(r: dict[str, Any]) -> list[str]:
    detail = [f"{r['worker']} at {r['latency_ms']} ms, fed by {r['feed']}:"]
    if r["seconds"] is not None:
        detail.append(f"exact after {r['seconds']:.2f} s;")
    if r["webhooks_seconds"] is not None:
        what = "webhooks all answered" if r["feed"] == "webhooks" else "messages all confirmed"
        detail.append(f"{what} after {r['webhooks_seconds']:.2f} s "
                      f"(p50 {fmt_ms(r['webhook_p50'])}, p99 {fmt_ms(r['webhook_p99'])});")
    if r["supplier_calls"]:
        detail.append("supplier calls " + ", ".join(f"{k} {v}" for k, v in r["supplier_calls"].items()) + ";")
    if r["convergences"]:
        detail.append(f"{r['convergences']} converging transactions locked lines "
                      f"(mean {r['lines_per_convergence_mean']:.1f}, max {r['lines_per_convergence_max']} lines"
                      + (f", one every {fmt_ms(r['convergence_interval'])}" if r["convergence_interval"] else "")
                      + ");")
    if r["models_per_call_mean"] is not None:
        detail.append(f"{r['models_per_call_mean']:.1f} models per growing-order call;")
    for service, peak in r["memory"].items():
        detail.append(f"{service} peak RSS {peak['rss_mb']:.0f} MB (PSS {peak['pss_mb']:.0f} MB, "
                      f"{peak['processes']} processes);")
    return detail
