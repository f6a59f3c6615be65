"""Operator tooling: the `rewix-sync` command and the operator web page."""
