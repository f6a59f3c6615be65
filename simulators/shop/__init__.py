"""A WooCommerce shop simulator: REST v3 orders, their notes and refunds, order webhooks, a control API;
its answers and deliveries follow what a real WooCommerce 9.2.5 sent (tests/recordings.py)."""
from simulators.shop.control import ShopControl
from simulators.shop.orders import make_order
from simulators.shop.server import ShopSimulator, start_in_thread

__all__ = ["ShopControl", "ShopSimulator", "make_order", "start_in_thread"]
