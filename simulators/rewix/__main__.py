"""python -m simulators.rewix: run the simulated supplier until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from simulators.rewix.server import SimulatorServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators.rewix", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="0 picks a free port")
    parser.add_argument("--api-key", default=os.environ.get("REWIX_SIM_API_KEY", "demo-key"))
    parser.add_argument("--password", default=os.environ.get("REWIX_SIM_PASSWORD", "demo-password"))
    parser.add_argument("--seed-catalog", type=int, default=0, metavar="N", help="N products x 3 sizes, 1000 units each")
    parser.add_argument("--latency-ms", type=int, default=0, help="every request answered this much later")
    parser.add_argument("--rate-limit", type=float, default=0, metavar="PER_SECOND",
                        help="answer 429 (Retry-After: 1) above this many requests/s, with a second's burst; 0: none")
    args = parser.parse_args(argv)

    server = SimulatorServer(args.host, args.port, args.api_key, args.password)
    if args.seed_catalog:
        server.state.seed_products(args.seed_catalog)
    faults = {}
    if args.latency_ms:
        faults["latency_ms"] = args.latency_ms
    if args.rate_limit:
        faults["rate_limit"] = {"per_second": args.rate_limit, "retry_after": 1}
    if faults:
        server.state.configure_faults(faults)

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        # Only set a flag: shutting the server down from inside the handler
        # would wait for the very loop the signal interrupted.
        signal.signal(signum, lambda *_: stop.set())

    server.start()
    # Whoever started us (tests, the demo) reads this line to learn the port.
    print(f"listening on {server.url}", flush=True)
    stop.wait()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
