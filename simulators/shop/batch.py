"""POST /orders/batch as WooCommerce 9.2.5 answers it (WC_REST_Controller::batch_items).

- The body is `{"create": [...], "update": [...], "delete": [...]}`; the
  route's schema (get_public_batch_schema) wants arrays, `update` of
  objects. More items than the limit in all (the filter
  `woocommerce_rest_batch_items_limit`, 100 unless a plugin changes it;
  `limit` here) is refused whole: 413 `woocommerce_rest_request_entity_too_large`,
  "Unable to accept more than 100 items for this request.".
- Each update runs as its own PUT /orders/{id} (update_item, without the
  route's argument validation), one after the other: it saves the order,
  which fires `order.updated` and moves date_modified_gmt on, as a PUT does.
- The answer is 200 with `{"update": [...]}`, one entry per update in the
  order given: the order as saved (with its `_links`), or, for an update that
  failed while the others were saved, `{"id": <the id as sent>, "error":
  {"code", "message", "data"}}`. An order the shop does not have is
  `woocommerce_rest_shop_order_invalid_id`, "Invalid ID.", status 400.

The simulator takes updates only (it creates and deletes no order through
REST): a `create` or `delete` list is refused with a 400 of its own.
"""
from __future__ import annotations

from typing import Any

from simulators.shop.state import ShopState
from simulators.shop.wire import ApiError, not_of_type, object_body

DEFAULT_LIMIT = 100


def batch_update(state: ShopState, body: Any, limit: int = DEFAULT_LIMIT) -> dict[str, Any] | list[Any]:
    items = {key: value for key, value in object_body(body).items() if value}  # PHP's array_filter
    for key in ("create", "update", "delete"):
        if key in items and not isinstance(items[key], list):
            raise not_of_type(key, key, "array")
    total = sum(len(items.get(key) or []) for key in ("create", "update", "delete"))
    if total > limit:
        raise ApiError(413, "woocommerce_rest_request_entity_too_large",
                       f"Unable to accept more than {limit} items for this request.")
    if items.get("create") or items.get("delete"):
        raise ApiError(400, "simulator_updates_only", "The simulator's orders/batch takes updates only.")
    answers = []
    for index, item in enumerate(items.get("update") or []):
        if not isinstance(item, dict):
            raise not_of_type(f"update[{index}]", "update", "object")
        answers.append(_update_one(state, item))
    return {"update": answers} if answers else []  # PHP encodes the empty array as a list


def _update_one(state: ShopState, item: dict[str, Any]) -> dict[str, Any]:
    sent_id = item.get("id")
    try:
        order_id = int(sent_id)  # type: ignore[arg-type]  # PHP's (int) cast: a missing id is 0
    except (TypeError, ValueError):
        order_id = 0
    fields = {key: value for key, value in item.items() if key != "id"}
    try:
        fault = state.take_item_fault(order_id)
        if fault is not None:
            raise ApiError(int(fault["status"]), str(fault.get("code") or "internal_server_error"),
                           str(fault.get("message") or "The order could not be saved."))
        return state.rest_update(order_id, "BATCH", fields)
    except ApiError as error:
        return {"id": sent_id, "error": error.reply().body}
