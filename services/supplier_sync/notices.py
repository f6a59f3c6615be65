"""What supplier_sync tells the shop owner once on an order (shared/orders/notices.py), in which words. No I/O.

A notice is not a problem: nothing waits for a person. The owner reads it as
a private note on the shop order; the note is the owner's, so it may quote
the customer's text as the supplier received it, which no log line does.
"""
from __future__ import annotations

from collections.abc import Sequence

from shared.clients.rewix.fitting import Shortened

FITTED = "fitted"
# A fitted text longer than this is told by its length only: the customer note, which the owner
# has on the order anyway. Every address text fits under it, quoted as the supplier received it.
QUOTED_UP_TO = 200


def fitted_note(shortened: Sequence[Shortened]) -> str:
    """One note for every text of the order sent shorter than the customer wrote it."""
    parts = [_shortened(s) for s in shortened]
    return (
        "Sent to the supplier with shortened fields, since the supplier takes only so many characters "
        "of each: " + "; ".join(parts) + ". Check the parcel's address and phone at the supplier "
        "if anything important was cut."
    )


def _shortened(change: Shortened) -> str:
    told = f"{change.field} from {change.before:,} to {change.after:,} characters"
    if change.after <= QUOTED_UP_TO:
        told += f' ("{change.value}")'
    return told
