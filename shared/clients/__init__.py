"""The two outside APIs: the Rewix supplier (rewix/) and the WooCommerce shop (shop/)."""
