"""Benchmarks: scripts that run the real services as subprocesses and print figures."""
