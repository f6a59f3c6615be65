"""The stored supplier catalog as rows, a CSV and a table (`rewix-sync catalog list`)."""
from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from shared.db.models import CatalogModel

FIELDS = ("stock_id", "code", "barcode", "name", "size", "availability")


def catalog_rows(session: Session) -> list[dict[str, Any]]:
    models = session.scalars(select(CatalogModel).order_by(CatalogModel.stock_id))
    return [{name: getattr(m, name) for name in FIELDS} for m in models]


def as_csv(rows: list[dict[str, Any]], fields: tuple[str, ...] = FIELDS) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
