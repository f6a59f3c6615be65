"""A WooCommerce shop simulator: REST v3 orders and notes, order webhooks, a control API."""
from simulators.shop.control import ShopControl
from simulators.shop.orders import make_order
from simulators.shop.server import ShopSimulator, start_in_thread

__all__ = ["ShopControl", "ShopSimulator", "make_order", "start_in_thread"]
