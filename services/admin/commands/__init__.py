"""The `rewix-sync` commands, one module per group; `services/admin/cli.py` gathers them."""
