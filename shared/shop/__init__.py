"""Talking to the WooCommerce shop: REST client and webhook signatures."""
from shared.shop.client import WooCommerceClient
from shared.shop.signature import sign, verify, wp_json_encode

__all__ = ["WooCommerceClient", "sign", "verify", "wp_json_encode"]
