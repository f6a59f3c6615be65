"""Talking to the WooCommerce shop: REST client and webhook signatures."""
from shared.shop.client import WooCommerceClient
from shared.shop.signature import sign, verify

__all__ = ["WooCommerceClient", "sign", "verify"]
