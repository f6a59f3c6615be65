"""RabbitMQ: connections and publishers, the batching consumer, the topology, the messages."""
