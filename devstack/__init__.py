"""The development stack: the system and its simulators on a scratch database and vhost of their own.

A development tool, not part of the product: the demo (`rewix-sync demo`),
the benchmarks (bench/) and the fault tests (tests/faults/) start what they
need through it; the production image does not carry it (see the Dockerfile).

- `waiting.wait_until`: poll a condition with a deadline.
- `scratch`: uniquely named PostgreSQL databases and RabbitMQ vhosts, made and
  removed (`rabbitmqctl` lives here only).
- `processes.Service`: a `python -m ...` process in its own process group.
- `stack.DevStack`: all of it together for one run.
"""
