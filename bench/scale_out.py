"""`python -m bench.scale_out`: what more replicas of a worker buy on this machine, measured.

    python -m bench.scale_out [--sync-replicas 1,2,3] [--orders 2000] [--latency-ms 50] [--rounds 2]
                              [--poller-replicas 1,2] [--open-orders 10000] [--window 25]

Two curves, each replica a real `python -m services...` process of its own:

- supplier_sync with 1, 2 and 3 replicas consuming one work queue, the
  supplier simulator at --latency-ms (no rate limit): a burst of --orders
  pending orders (3 supplier lines each) published straight onto the work
  queue, as bench.pipeline's queue feed does (ingest, measured on its own by
  bench.ingest, would otherwise be what limits), timed from the first message
  to the first look at the supplier's growing order that finds it exact. The
  figure is lines locked per second. Each run has a database, a vhost and a
  simulator of its own (bench/pipeline_run.py). Each count runs --rounds
  times, interleaved, and the best round is kept (every round is printed): on
  a shared machine other work slows some runs, never speeds one up.
- status_poller with 1 and 2 replicas over --open-orders open supplier orders
  (bench.poller's set-up), the supplier simulator at the same latency and no
  rate limit, the poll interval short and the request budget high so neither
  paces the replicas: what they can do, not what they are allowed. The figure
  is polls per second, the supplier's count of status requests over --window
  seconds of steady polling (after the replicas have all started polling).

Beside each figure, what the machine did meanwhile: the CPU each process used
(bench/cpu_use.py; in CPUs, 1.0 = one core kept busy), and for supplier_sync
the run database's backends waiting on a lock (bench/db_waits.py). From these
the benchmark says where the curve stops growing and why. There is no target:
the 1-replica figure is the baseline.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text

from bench.burst import make_burst
from bench.common import (
    Service, install_cleanup, log_directory, queue_info, scratch_database, scratch_vhost, service_env,
    start_rewix_simulator, wait_until,
)
from bench.cpu_use import MACHINE, busy_share, cpu_by_process
from bench.pipeline import attempt
from bench.pipeline_result import RunResult, RunSpec
from bench.poller import API_KEY, PASSWORD, open_orders
from shared.db import normalise_url
from services.status_poller.poller import DEFAULT_CONCURRENCY
from shared.messaging import topology
from simulators.rewix.control import SimulatorControl
from simulators.shop import start_in_thread as start_shop

SEED = 20261126
MODELS = 200
# A replica that adds less than this share to the one before it has stopped the curve growing.
GROWTH = 0.15
# Of the machine's CPUs, the share in use above which it counts as full.
FULL = 0.85
# The poller's interval and budget in these runs: a cycle of 10,000 orders wants 1,000 polls/s,
# above what a replica does, so the replicas go as fast as they can.
POLL_INTERVAL = 10
POLL_BUDGET = 5000
SHOP_KEY, SHOP_SECRET = "ck_scale", "cs_scale"


@dataclass
class Point:
    """One replica count on a curve."""

    replicas: int
    rate: float | None  # lines locked/s or polls/s
    cpu: dict[str, float] = field(default_factory=dict)  # process -> CPUs used
    db_backends: dict[str, float] = field(default_factory=dict)
    note: str = ""
    problems: list[str] = field(default_factory=list)


# --- supplier_sync ---------------------------------------------------------------------------------


def supplier_sync_curve(replicas: list[int], orders: int, latency_ms: int, rounds: int, log_dir: Path,
                        say: Callable[[str], None]) -> list[Point]:
    """Each replica count `rounds` times, interleaved (1, 2, 3, 1, 2, 3) so that a stretch of other work on
    the machine does not land on one count only; the best round of each is the point, every round shown."""
    burst = make_burst(orders, MODELS, SEED)
    tried: dict[int, list[Point]] = {count: [] for count in replicas}
    for round_ in range(1, rounds + 1):
        for count in replicas:
            say(f"  supplier_sync x{count}, round {round_}: {orders} orders ({burst.line_count} lines) "
                f"at {latency_ms} ms...")
            spec = RunSpec("supplier_sync", latency_ms, burst, senders=1, timeout=180, feed="queue", replicas=count,
                           log_dir=log_dir / f"supplier_sync-x{count}-round{round_}")
            result: RunResult = attempt(spec, say)
            problems = list(result.problems) + ([] if result.exact else ["not exact"])
            note = (f"{result.convergences} converging transactions, supplier calls lock "
                    f"{result.supplier_calls.get('lock', 0)}")
            tried[count].append(Point(count, result.lines_per_s, result.cpu, result.db_backends, note, problems))
    points = []
    for count, runs in tried.items():
        best = max(runs, key=lambda p: p.rate or 0.0)
        if len(runs) > 1:
            best.note += "; rounds: " + ", ".join("-" if p.rate is None else f"{p.rate:,.0f}" for p in runs) + " lines/s"
        best.problems = [problem for p in runs for problem in p.problems]
        points.append(best)
    return points


# --- status_poller ---------------------------------------------------------------------------------


def poller_curve(replicas: list[int], open_count: int, latency_ms: int, window: float, log_dir: Path,
                 say: Callable[[str], None]) -> list[Point]:
    points = []
    with ExitStack() as stack:
        database_url = stack.enter_context(scratch_database("bench_scale"))
        amqp_url = stack.enter_context(scratch_vhost("bench_scale"))
        engine = create_engine(normalise_url(database_url))
        stack.callback(engine.dispose)
        supplier, supplier_url = start_rewix_simulator(log_dir, API_KEY, PASSWORD)
        stack.callback(supplier.stop)
        control = SimulatorControl(supplier_url, timeout=60)
        stack.callback(control.close)
        # The shop-side loops of status_poller need a shop to talk to; the periodic passes are off.
        shop = start_shop(consumer_key=SHOP_KEY, consumer_secret=SHOP_SECRET)
        stack.callback(shop.stop)
        shop.webhooks.configure(enabled=False)

        started = time.monotonic()
        products = open_count // 3 + 1
        control.seed_catalog(products=products, availability=1000)
        open_orders(supplier_url, engine, open_count, [100000 + i for i in range(3 * products)], 0)
        control.faults(latency_ms=latency_ms)
        say(f"  status_poller: {open_count} open supplier orders set up in {time.monotonic() - started:.0f} s")
        env = service_env(
            DATABASE_URL=database_url, AMQP_URL=amqp_url, LOG_LEVEL="INFO", METRICS_PORT="0",
            REWIX_API_URL=supplier_url, REWIX_API_KEY=API_KEY, REWIX_API_PASSWORD=PASSWORD,
            WC_URL=shop.url, WC_CONSUMER_KEY=SHOP_KEY, WC_CONSUMER_SECRET=SHOP_SECRET,
            POLL_INTERVAL_SECONDS=str(POLL_INTERVAL), POLL_REQUESTS_PER_SECOND=str(POLL_BUDGET),
            SHOP_CATCHUP_INTERVAL_SECONDS="0", SHOP_VERIFY_INTERVAL_SECONDS="0",
            SHOP_WEBHOOK_CHECK_INTERVAL_SECONDS="0",
        )
        for count in replicas:
            say(f"  status_poller x{count}: {window:.0f} s of steady polling at {latency_ms} ms...")
            points.append(_poll_run(count, env, engine, amqp_url, control, supplier, window,
                                    log_dir / f"status_poller-x{count}"))
    return points


def _poll_run(count: int, env: dict[str, str], engine: Engine, amqp_url: str, control: SimulatorControl,
              supplier: Service, window: float, log_dir: Path) -> Point:
    _park(engine)
    log_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        replicas = []
        for number in range(1, count + 1):
            replica = Service(f"status_poller-{number}", "services.status_poller", env, log_dir)
            stack.callback(replica.stop)
            replicas.append(replica)
        # Each replica consumes status changes once it runs: all of them are up.
        wait_until(lambda: _consumers(amqp_url, topology.STATUS_CHANGES.name) >= count, timeout=60, interval=0.2,
                   what=f"{count} status_poller consuming")
        base = _requests(control)
        _make_due(engine)
        # Steady: every replica has had time to wake (it sleeps at most 5 s while nothing is due) and lease.
        wait_until(lambda: _requests(control) > base, timeout=30, interval=0.1, what="the first poll")
        time.sleep(6.0)
        processes = {r.name: r.process.pid for r in replicas}
        processes["supplier simulator"] = supplier.process.pid
        cpu_before, requests_before, began = cpu_by_process(processes), _requests(control), time.monotonic()
        time.sleep(window)
        cpu_after, requests_after, seconds = cpu_by_process(processes), _requests(control), time.monotonic() - began
        with engine.connect() as c:
            polled = c.execute(text("SELECT count(*) FROM supplier_orders WHERE last_polled_at IS NOT NULL")).scalar_one()
        problems = [f"{r.name} exited" for r in replicas if not r.alive]
    return Point(count, (requests_after - requests_before) / seconds, busy_share(cpu_before, cpu_after, seconds),
                 note=f"{polled} distinct orders polled by the end", problems=problems)


def _park(engine: Engine) -> None:
    """Nothing due for an hour, nothing polled: the replicas start idle."""
    with engine.begin() as c:
        c.execute(text("UPDATE supplier_orders SET final = false, next_poll_at = now() + interval '1 hour',"
                       " last_polled_at = NULL"))


def _make_due(engine: Engine) -> None:
    with engine.begin() as c:
        c.execute(text("UPDATE supplier_orders SET next_poll_at = now()"))


def _requests(control: SimulatorControl) -> int:
    return int(control.state()["requests_total"])


def _consumers(amqp_url: str, queue: str) -> int:
    info = queue_info(amqp_url, queue)
    return info[1] if info else 0


# --- what the curve says ---------------------------------------------------------------------------


def curve_lines(title: str, unit: str, points: list[Point]) -> list[str]:
    base = points[0].rate if points and points[0].replicas == 1 else None
    lines = [title, f"{'replicas':>8}{unit:>16}{'x 1 replica':>13}{'machine CPUs':>14}   this run's processes (CPUs)",
             "-" * 110]
    for p in points:
        rate = "-" if p.rate is None else f"{p.rate:,.1f}"
        ratio = "-" if p.rate is None or not base else f"{p.rate / base:.2f}"
        machine = p.cpu.get(MACHINE, 0.0)
        busiest = ", ".join(f"{name} {used:.2f}" for name, used in _processes(p))
        lines.append(f"{p.replicas:>8}{rate:>16}{ratio:>13}{machine:>14.2f}   {busiest}")
        detail = p.note
        if p.db_backends:
            detail += "; database backends (mean): " + ", ".join(f"{k} {v:.2f}" for k, v in p.db_backends.items())
        lines.append(f"{'':>8}  {detail}")
        for problem in p.problems:
            lines.append(f"{'':>8}  problem: {problem}")
    return lines


def verdict(name: str, points: list[Point], cpus: int, workers: str,
            ceiling: Callable[[Point, bool], str]) -> list[str]:
    """Where the curve stops growing and why, from the figures measured: the rate at each step, what
    the replicas' CPU, the machine's CPU and the database's lock waits did meanwhile."""
    measured = [p for p in points if p.rate and p.cpu]
    if len(measured) < 2:
        return [f"{name}: not enough points measured to draw a curve"]
    base = measured[0]
    assert base.rate is not None
    stopped = None
    for before, after in zip(measured, measured[1:]):
        assert before.rate is not None and after.rate is not None
        if after.rate / before.rate - 1 < GROWTH:
            stopped = (before, after)
            break
    last = stopped[1] if stopped else measured[-1]
    assert last.rate is not None
    if stopped is None:
        lines = [f"{name}: still growing at {last.replicas} replicas ({last.rate / base.rate:.2f} x 1 replica)"]
    else:
        before = stopped[0]
        assert before.rate is not None
        lines = [f"{name}: stops growing at {last.replicas} replicas "
                 f"({last.rate / before.rate - 1:+.0%} over {before.replicas})"]
    work = [_worker_cpu(p, workers) for p in measured]
    spread = stopped is not None and work[-1] <= work[0] * (1 + GROWTH)
    lines.append("  the replicas' CPU together: " + ", ".join(f"{p.replicas}: {w:.2f}" for p, w in zip(measured, work))
                 + (" (the same work spread over more processes, not more work done)" if spread else ""))
    if any(p.db_backends for p in measured):
        waits = [p.db_backends.get("lock wait", 0.0) for p in measured]
        queued = waits[-1] >= 0.5 and waits[-1] > 2 * waits[0]
        lines.append("  backends waiting on a lock in PostgreSQL (mean): "
                     + ", ".join(f"{p.replicas}: {w:.2f}" for p, w in zip(measured, waits))
                     + (" (the replicas queue behind each other's locks)" if queued else ""))
    machine, ours = last.cpu.get(MACHINE, 0.0), _ours(last)
    full = ""
    if machine >= FULL * cpus:
        full = " (full: other work on the machine took the rest)" if ours < FULL * cpus else " (full)"
    lines.append(f"  machine CPUs at {last.replicas} replicas: {machine:.2f} of {cpus} busy, "
                 f"{ours:.2f} of them this run's processes{full}")
    lines.append("  " + ceiling(last, stopped is not None))
    return lines


def _processes(p: Point) -> list[tuple[str, float]]:
    """The run's processes, busiest first (the machine's total apart)."""
    return sorted(((n, u) for n, u in p.cpu.items() if n != MACHINE), key=lambda kv: -kv[1])


def _worker_cpu(p: Point, workers: str) -> float:
    return sum(used for name, used in p.cpu.items() if name.startswith(workers))


def _ours(p: Point) -> float:
    return sum(used for _name, used in _processes(p))


def sync_ceiling(p: Point, stopped: bool) -> str:
    """Why supplier_sync replicas stop adding up (or why they still do), with what this run measured."""
    assert p.rate is not None
    waits = p.db_backends.get("lock wait", 0.0)
    each = _worker_cpu(p, "supplier_sync") / p.replicas
    if stopped:
        return (f"why it stops: a converging transaction holds the advisory lock of every model its batch touches (a batch "
                f"is up to 200 lines: most of the burst's {MODELS} models) until it commits, after its supplier "
                f"call, so replicas' convergences over the same models take turns ({waits:.2f} backends waiting on "
                f"a lock); the CPU measured per line ({_ours(p) / p.rate * 1000:.2f} ms across this run's processes) "
                f"puts {p.rate:,.0f} lines/s at {_ours(p):.2f} CPUs")
    return (f"why it still grows: a replica spends most of a convergence waiting for the supplier and PostgreSQL, "
            f"not on CPU ({each:.2f} CPUs each), so another overlaps it as far as the models' advisory locks let "
            f"it ({waits:.2f} backends waiting on a lock)")


def poll_ceiling(latency_ms: int, cpus: int) -> Callable[[Point, bool], str]:
    def say(p: Point, stopped: bool) -> str:
        assert p.rate is not None
        per_poll = _ours(p) / p.rate * 1000
        each = p.rate / p.replicas
        machine_rate = cpus * 1000 / per_poll
        most = f"{DEFAULT_CONCURRENCY * 1000 / latency_ms:,.0f}/s" if latency_ms else "what its CPU allows"
        lead = "why it stops" if stopped else "why it still grows"
        return (f"{lead}: a replica asks the supplier at most {DEFAULT_CONCURRENCY} at once, so at {latency_ms} ms it "
                f"polls at most {most} ({each:,.0f}/s each measured) and replicas add up while CPUs are free; at the "
                f"CPU measured per poll ({per_poll:.2f} ms across the pollers, the supplier simulator, PostgreSQL and "
                f"RabbitMQ) this machine's {cpus} CPUs would carry about {machine_rate:,.0f} polls/s, about "
                f"{machine_rate / each:.0f} replicas' worth, if nothing else ran on it")
    return say


# --- main --------------------------------------------------------------------------------------------


def run(*, sync_replicas: list[int], orders: int, latency_ms: int, rounds: int, poller_replicas: list[int],
        open_count: int, window: float, out: Callable[[str], None] = print) -> dict[str, Any]:
    log_dir = log_directory("bench-scale-out")
    cpus = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    out(f"scale-out: every replica a process of its own, on {cpus} CPUs (1-minute load average {load_before:.1f}; "
        f"the machine is shared, other work takes from the same CPUs); logs in {log_dir}")
    began = time.monotonic()
    sync = supplier_sync_curve(sync_replicas, orders, latency_ms, rounds, log_dir, out) if sync_replicas else []
    polls = poller_curve(poller_replicas, open_count, latency_ms, window, log_dir, out) if poller_replicas else []
    out("")
    if sync:
        for line in curve_lines(f"supplier_sync: {orders} orders x 3 lines fed onto the work queue, supplier at "
                                f"{latency_ms} ms, no rate limit", "lines/s", sync):
            out(line)
        out("")
    if polls:
        for line in curve_lines(f"status_poller: {open_count} open supplier orders, supplier at {latency_ms} ms, "
                                f"no rate limit, interval {POLL_INTERVAL} s and budget {POLL_BUDGET}/s per replica "
                                "(neither paces)", "polls/s", polls):
            out(line)
        out("")
    out("baseline: the 1-replica figure of each curve, measured in the same run; CPUs used: each process's CPU time "
        "over the measured time (1.00 = one core busy), PostgreSQL and RabbitMQ counted whole (other users' work on "
        "them included); machine CPUs: every process on the machine; database backends: the run database's connections sampled every 0.1 s")
    verdicts = []
    if sync:
        verdicts += verdict("supplier_sync", sync, cpus, "supplier_sync", sync_ceiling)
    if polls:
        verdicts += verdict("status_poller", polls, cpus, "status_poller", poll_ceiling(latency_ms, cpus))
    for line in verdicts:
        out(line)
    out(f"benchmark time {time.monotonic() - began:.0f} s; 1-minute load average {load_before:.1f} before, "
        f"{os.getloadavg()[0]:.1f} after")
    return {"supplier_sync": [p.__dict__ for p in sync], "status_poller": [p.__dict__ for p in polls],
            "verdicts": verdicts}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_out", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sync-replicas", default="1,2,3", help="supplier_sync replica counts, comma-separated")
    parser.add_argument("--orders", type=int, default=2000, help="orders in the supplier_sync burst")
    parser.add_argument("--latency-ms", type=int, default=50, help="the supplier simulator's latency")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each supplier_sync replica count (best kept)")
    parser.add_argument("--poller-replicas", default="1,2", help="status_poller replica counts, comma-separated")
    parser.add_argument("--open-orders", type=int, default=10_000, help="open supplier orders the pollers poll")
    parser.add_argument("--window", type=float, default=25.0, help="seconds of steady polling measured")
    args = parser.parse_args(argv)
    install_cleanup()

    def counts(text_: str) -> list[int]:
        return [int(x) for x in text_.split(",") if x.strip()]

    figures = run(sync_replicas=counts(args.sync_replicas), orders=args.orders, latency_ms=args.latency_ms,
                  rounds=args.rounds, poller_replicas=counts(args.poller_replicas), open_count=args.open_orders, window=args.window)
    failed = any(p["problems"] for curve in ("supplier_sync", "status_poller") for p in figures[curve])
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
