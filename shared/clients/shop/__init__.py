"""Talking to the WooCommerce shop: REST client and webhook signatures."""
from shared.clients.shop.client import WooCommerceClient
from shared.clients.shop.signature import sign, verify

__all__ = ["WooCommerceClient", "sign", "verify"]
