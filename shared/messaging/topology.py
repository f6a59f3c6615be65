"""Every exchange and queue of the system, declared in one place.

    rewix.events                       direct exchange all messages are published to
      order_line    -> rewix.order_lines        supplier_sync's work queue
      status_change -> rewix.status_changes     status_poller's applier queue
      order_send    -> rewix.order_sends        supplier_sync's send worker: paid orders to send
    rewix.order_lines.wait.30s         a wait queue per retry delay: TTL, then dead-lettered
                                       back onto the work queue through the default exchange
    rewix.order_lines.dead             dead letters, kept until an operator acts

Work and dead-letter queues are quorum queues (replicated, with a delivery
limit that catches a message crashing its consumer every time). Declaring is
idempotent, so whichever process starts first creates it all: `declare` what
a publisher needs, `declare_wait_queues` what the consumer of a queue retries
into (only that consumer publishes there, so only it needs the delays).
"""
from __future__ import annotations

from dataclasses import dataclass

EXCHANGE = "rewix.events"
ORDER_LINE = "order_line"
STATUS_CHANGE = "status_change"
ORDER_SEND = "order_send"

# How often RabbitMQ redelivers a message whose consumer died before it gets
# moved to the dead letters: a poison message that kills its worker.
DELIVERY_LIMIT = 10


@dataclass(frozen=True)
class WorkQueue:
    name: str
    routing_key: str
    # The setting that holds the delays of its wait queues (seconds, one wait queue each).
    delays_setting: str

    def retry_delays(self, settings: object) -> list[int]:
        return list(getattr(settings, self.delays_setting))

    @property
    def dead(self) -> str:
        return f"{self.name}.dead"

    def wait(self, delay_seconds: int) -> str:
        return f"{self.name}.wait.{delay_seconds}s"


ORDER_LINES = WorkQueue("rewix.order_lines", ORDER_LINE, delays_setting="sync_retry_delays")
# Status changes have no delays setting of their own: they are retried on the
# supplier's schedule, SYNC_RETRY_DELAYS, like order lines.
STATUS_CHANGES = WorkQueue("rewix.status_changes", STATUS_CHANGE, delays_setting="sync_retry_delays")
# Paid orders to send: apart from the lines so that sends, which the supplier takes one
# request each, wait for the budget the locks leave without holding the locks up.
ORDER_SENDS = WorkQueue("rewix.order_sends", ORDER_SEND, delays_setting="sync_retry_delays")
WORK_QUEUES = (ORDER_LINES, STATUS_CHANGES, ORDER_SENDS)


def work_queue(name: str) -> WorkQueue:
    for queue in WORK_QUEUES:
        if queue.name == name:
            return queue
    raise KeyError(f"unknown work queue {name!r}")


def declare(channel) -> None:
    """Declare the exchange, the work queues and their dead letters on a pika channel."""
    channel.exchange_declare(EXCHANGE, exchange_type="direct", durable=True)
    for queue in WORK_QUEUES:
        channel.queue_declare(queue.dead, durable=True, arguments={"x-queue-type": "quorum"})
        channel.queue_declare(
            queue.name,
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue.dead,
            },
        )
        channel.queue_bind(queue.name, EXCHANGE, routing_key=queue.routing_key)


def declare_wait_queues(channel, queue: WorkQueue, delays: list[int]) -> None:
    """Declare a work queue's wait queues: each holds a message for its delay, then hands it back."""
    for delay in sorted(set(delays)):
        channel.queue_declare(
            queue.wait(delay),
            durable=True,
            arguments={
                "x-queue-type": "quorum",
                "x-message-ttl": delay * 1000,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": queue.name,
                # A message leaving the wait queue is not dropped if the
                # work queue cannot take it at that instant.
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            },
        )
