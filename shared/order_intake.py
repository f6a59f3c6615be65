"""The one path every order event takes to RabbitMQ: webhooks, catch-up and backfill.

Converts the order, records the lines that matched no supplier model
(shared/unmatched_lines.py), skips what costs the supplier nothing (an order
that never had a supplier line), remembers orders that had one (so losing the
last one still releases it), and publishes with confirms. It returns only once
RabbitMQ has confirmed every message.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert

from shared import topology, unmatched_lines
from shared.amqp import Outgoing, Publisher
from shared.db import session_scope
from shared.db.models import KnownOrder
from shared.order_events import Conversion, convert
from shared.product_map import ProductResolver


class OrderIntake:
    def __init__(self, database_url: str, publisher: Publisher) -> None:
        self.database_url = database_url
        self.publisher = publisher

    def submit(self, body: Any, topic: str, source: str = "webhook") -> Conversion:
        """Publish what the order event needs; raises InvalidOrder or BrokerUnavailable."""
        with session_scope(self.database_url) as session:
            conversion = convert(body, topic, ProductResolver(session).resolve, source)
            if conversion.unmatched:
                unmatched_lines.record(session, conversion.order_id, conversion.unmatched)
            if not conversion.messages:
                return conversion
            if conversion.has_supplier_lines:
                session.execute(
                    insert(KnownOrder).values(order_id=conversion.order_id).on_conflict_do_nothing()
                )
            elif session.get(KnownOrder, conversion.order_id) is None:
                # Never had a supplier line: nothing to lock, nothing to release.
                return Conversion(conversion.order_id, [], False, ignored="no supplier line")
        # Committed before publishing: a message only exists for a known order.
        # All of the order's messages go out at once and are confirmed together.
        self.publisher.publish_all(
            [Outgoing(m.to_bytes(), topology.ORDER_LINE, m.message_id) for m in conversion.messages]
        )
        return conversion
