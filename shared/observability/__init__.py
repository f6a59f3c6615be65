"""What an operator sees of a worker process: liveness, readiness and metrics.

- health.py: heartbeats of the process's loops (/healthz) and the state of
  its connections (/readyz);
- metrics.py: every metric the workers serve, defined once;
- backlog.py: what waits for a person (dead letters, short lines, unsent
  paid orders), read from the store and the broker at scrape time;
- server.py: the HTTP server for the three endpoints on METRICS_PORT.
"""
