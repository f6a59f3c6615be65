"""Run the shop simulator as its own process.

    python -m simulators.shop --port 0 --consumer-key ck_x --consumer-secret cs_x \
        --webhook-url http://127.0.0.1:8080/webhooks/woocommerce --webhook-secret S

Every option falls back to an SHOP_SIM_* environment variable. The first stdout
line is `listening on http://HOST:PORT`, so a parent started with --port 0 can read
the port. SIGTERM or SIGINT stops it with exit status 0.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from simulators.shop.server import ShopSimulator


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(prog="python -m simulators.shop", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=env("SHOP_SIM_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(env("SHOP_SIM_PORT", "8091")))
    parser.add_argument("--consumer-key", default=env("SHOP_SIM_CONSUMER_KEY", "ck_simulator"))
    parser.add_argument("--consumer-secret", default=env("SHOP_SIM_CONSUMER_SECRET", "cs_simulator"))
    parser.add_argument("--site-url", default=env("SHOP_SIM_SITE_URL"),
                        help="the site's home URL as its clients reach it (http://shop-sim:8091): OAuth signatures "
                             "are checked against it, its REST index reports it and its webhooks name it as their "
                             "source, as WooCommerce does [default: http://HOST:PORT]")
    parser.add_argument("--webhook-url", default=env("SHOP_SIM_WEBHOOK_URL"))
    parser.add_argument("--webhook-secret", default=env("SHOP_SIM_WEBHOOK_SECRET"))
    parser.add_argument("--shipment-tracking", action="store_true",
                        default=env("SHOP_SIM_SHIPMENT_TRACKING", "").lower() in ("1", "true", "yes"),
                        help="serve the Shipment Tracking plugin's REST routes")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    simulator = ShopSimulator(
        args.host, args.port,
        consumer_key=args.consumer_key, consumer_secret=args.consumer_secret,
        webhook_url=args.webhook_url, webhook_secret=args.webhook_secret, site_url=args.site_url,
    ).start()
    simulator.tracking.set_enabled(args.shipment_tracking)
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    print(f"listening on {simulator.bound_url}", flush=True)
    stopping.wait()
    simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
