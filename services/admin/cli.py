"""`rewix-sync`: the operator's command line (README.md, "Operator commands").

The commands live in `services/admin/commands/`, one module per group; this
module only gathers them. Every command fails with one clear line on stderr
and a non-zero exit (2) when it cannot do its work (`services/admin/failures.py`);
`reconcile` exits 1 when differences remain.
"""
from __future__ import annotations

import click

from services.admin.commands import backfill, catalog, db, demo, dlq, products, reconcile, records, status, web, webhooks
from services.admin.commands import product_matching  # noqa: F401 (adds match, export, unmatched to products)
from services.admin.commands import own_products  # noqa: F401 (adds own to products)
from services.admin.commands import pay
from services.admin.commands.context import Context


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# The installed release: pyproject.toml's version, which the release's git tag v<version> names.
@click.version_option(package_name="rewix-sync", prog_name="rewix-sync", message="%(prog)s %(version)s")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Operate the WooCommerce <-> Rewix synchronisation."""
    ctx.ensure_object(Context)


for command in (db.db, products.products, records.reservations, records.orders, dlq.dlq, reconcile.reconcile,
                backfill.backfill, catalog.catalog, web.web, demo.demo, status.status, webhooks.webhooks):
    main.add_command(command)
main.add_command(pay.pay)


if __name__ == "__main__":
    main()
