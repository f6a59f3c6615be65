"""`python -m bench.pipeline`: a burst of orders through ingest and supplier_sync, against a naive worker.

What runs, for each supplier latency (0 ms and 50 ms by default):

- the supplier simulator (`python -m simulators.rewix --port 0`), its catalog
  seeded with the burst's models (plenty of availability), the latency set
  through its control API (`faults(latency_ms=...)`);
- ingest (`python -m services.ingest` on a free port), and a worker: either
  supplier_sync (`python -m services.supplier_sync`) or the naive baseline
  (`python -m bench.naive_worker`: one `lock` call per line, prefetch 1);
- a burst of pending orders with three supplier lines each (real v3 order
  bodies from simulators.shop.orders.make_order, signed with
  shared.clients.shop.signature.sign), posted as `order.created` webhooks by a pool of
  sender threads.

The same burst is also fed straight onto the work queue, bypassing ingest
(the order-line messages ingest would have published, confirmed in batches
of 100 orders): the worker's own rate, which the webhook feed hides once
ingest is the slower part.

Every feed/worker/latency triple is one run with a database and a vhost of
its own (migrated, product map seeded; dropped and deleted at the end, even
on failure) and a simulator of its own (bench/pipeline_run.py).

Figures per run:

- lines/s end to end: lines / (time the first webhook was sent -> the first
  look at the simulator (every 50 ms) that finds the growing order equal to
  the burst's totals, exactly);
- supplier calls per line: the simulator's count of growing-order calls
  (`orders/sold`, counted as "lock") / lines;
- latency per line, p50/p95/p99: from the moment the order's webhook was
  answered 200 to the moment that line was locked. For supplier_sync a
  trigger in the run's database stamps each order line with
  `clock_timestamp()` when its sync_status first becomes 'locked' (in the
  transaction that records the supplier's answer); the naive worker writes
  the time the supplier answered each line's lock. A lock can come before the
  webhook's answer reaches the sender (the messages are on the queue before
  ingest answers), so the low percentiles may be near or below zero;
- exact: after the burst settled (work queue empty, nothing in the wait or
  dead-letter queues) the growing order still equals the totals;
- memory: each service's peak RSS during the run (bench/memory.py).

Targets, at 50 ms, fed by webhooks: at most 0.2 supplier calls per line for
supplier_sync, at least 10 x the naive worker's lines/s, and exact final
locks; and ingest's and supplier_sync's peak RSS under the pipeline burst
≤ 150 MB each (bench/pipeline_report.py).

The naive worker at 50 ms locks ~20 lines/s whatever the burst, so by default
it gets a smaller burst there (the first 200 orders of the same burst):
rates are comparable, the run's time stays bounded.

`run(...)` returns the figures as a dict, for bench.run_all.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.burst import LINES_PER_ORDER, Burst, make_burst
from bench.common import install_cleanup, log_directory
from bench.pipeline_report import report, targets
from bench.pipeline_result import FEEDS, RunResult, RunSpec, new_result
from bench.pipeline_run import run_one


def run(
    *,
    orders: int = 1000,
    naive_orders: dict[int, int] | None = None,
    latencies: Iterable[int] = (0, 50),
    feeds: Iterable[str] = FEEDS,
    senders: int = 8,
    models: int = 200,
    seed: int = 20261126,
    log_dir: Path | None = None,
    out: Callable[[str], None] | None = print,
) -> dict[str, Any]:
    """Measure supplier_sync and the naive worker at each latency and feed; return every figure and the targets.

    `naive_orders` maps a latency to a smaller burst for the naive worker
    (default: 200 orders at 50 ms and more).
    """
    latencies, feeds = list(latencies), list(feeds)
    naive_orders = naive_orders if naive_orders is not None else {l: 200 for l in latencies if l >= 50}
    log_dir = log_dir or log_directory("bench-pipeline")
    say = out or (lambda _line: None)
    load_before = os.getloadavg()[0]
    say(f"pipeline: {orders} pending orders x {LINES_PER_ORDER} supplier lines over {models} models, "
        f"{senders} webhook senders, {os.cpu_count()} CPUs (load average {load_before:.1f}); logs in {log_dir}")
    began = time.monotonic()
    bursts: dict[int, Burst] = {}

    def burst_of(size: int) -> Burst:
        if size not in bursts:
            bursts[size] = make_burst(size, models, seed)
        return bursts[size]

    runs: list[RunResult] = []
    for feed in feeds:
        for latency in latencies:
            for worker in ("supplier_sync", "naive"):
                size = naive_orders.get(latency, orders) if worker == "naive" else orders
                burst = burst_of(size)
                budget = 60 + burst.line_count * latency / 1000 * 2 if worker == "naive" else 120
                spec = RunSpec(worker, latency, burst, senders, log_dir / f"{feed}-{worker}-{latency}ms", budget, feed)
                say(f"  running {worker} at {latency} ms supplier latency ({size} orders, fed by {feed})...")
                runs.append(attempt(spec, say))
    figures = {
        "config": {"orders": orders, "naive_orders": naive_orders, "latencies_ms": latencies, "feeds": feeds,
                   "senders": senders, "models": models, "lines_per_order": LINES_PER_ORDER, "seed": seed,
                   "cpus": os.cpu_count(), "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]},
        "runs": [r.as_dict() for r in runs],
        "targets": targets(runs),
        "log_dir": str(log_dir),
    }
    figures["passed"] = all(t["passed"] for t in figures["targets"])
    figures["seconds"] = round(time.monotonic() - began, 1)
    if out:
        for line in report(figures):
            out(line)
    return figures


def attempt(spec: RunSpec, say: Callable[[str], None], tries: int = 2) -> RunResult:
    """One run; a run that could not be carried out (not one that measured badly) is tried once more."""
    for number in range(1, tries + 1):
        result = new_result(spec)
        try:
            return run_one(spec, result)
        except Exception as exc:  # reported with the figures; the other runs still run
            failure = f"{type(exc).__name__}: {exc}"[:1000]
            if result.seconds is not None or number == tries:
                # Measured, then failed (cleaning up, say): keep what was measured.
                result.problems.append(f"run failed: {failure}")
                return result
            say(f"    run could not be carried out ({failure}); trying again")
            spec = replace(spec, log_dir=spec.log_dir.with_name(spec.log_dir.name + f"-try{number + 1}"))
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--naive-orders", type=int, default=200,
                        help="orders in the naive worker's burst at 50 ms latency and above")
    parser.add_argument("--latencies", default="0,50", help="supplier latencies in ms, comma-separated")
    parser.add_argument("--feeds", default=",".join(FEEDS), help="webhooks (through ingest), queue (straight onto it)")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    install_cleanup()
    latencies = [int(x) for x in args.latencies.split(",") if x.strip()]
    feeds = [f.strip() for f in args.feeds.split(",") if f.strip()]
    unknown = set(feeds) - set(FEEDS)
    if unknown:
        parser.error(f"unknown feeds {sorted(unknown)}; choose from {', '.join(FEEDS)}")
    figures = run(
        orders=args.orders,
        naive_orders={l: args.naive_orders for l in latencies if l >= 50},
        latencies=latencies,
        feeds=feeds,
        senders=args.senders,
        models=args.models,
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str))
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
