"""ingest: receives WooCommerce webhooks and turns each order event into order-line messages."""
