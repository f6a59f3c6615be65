"""The structure of a JSON document, without its values: which keys at every level and which
JSON type each has (string, number, bool, null, list, object). For comparing what the shop
simulator answers with what a real WooCommerce answered, where ids, dates and names differ.

A list's elements are merged into one element shape (the union of their keys and types), so a
list of orders compares as "a list of this kind of order". The comparison asks that every key
be on both sides and that the simulator never use a type the recording does not show at that
place; a recorded list that is always empty says nothing about its elements, while a
simulated list that is empty where the recording's has elements is reported, so that the
seeded data is made comparable rather than the difference passing unseen.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EMPTY = "no elements"


@dataclass
class Shape:
    scalars: set[str] = field(default_factory=set)  # "string", "number", "bool", "null"
    keys: dict[str, Shape] | None = None  # when it is (or can be) an object
    element: Shape | str | None = None  # when it is (or can be) a list: the merged elements, or EMPTY

    def kinds(self) -> set[str]:
        return self.scalars | ({"object"} if self.keys is not None else set()) | (
            {"list"} if self.element is not None else set())


def shape_of(value: Any) -> Shape:
    if isinstance(value, dict):
        return Shape(keys={key: shape_of(item) for key, item in value.items()})
    if isinstance(value, list):
        element: Shape | str = EMPTY
        for item in value:
            element = shape_of(item) if element == EMPTY else merge(element, shape_of(item))  # type: ignore[arg-type]
        return Shape(element=element)
    if value is None:
        return Shape({"null"})
    if isinstance(value, bool):
        return Shape({"bool"})
    if isinstance(value, (int, float)):
        return Shape({"number"})
    if isinstance(value, str):
        return Shape({"string"})
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def merge(a: Shape, b: Shape) -> Shape:
    keys = None
    if a.keys is not None or b.keys is not None:
        keys = dict(a.keys or {})
        for key, item in (b.keys or {}).items():
            keys[key] = merge(keys[key], item) if key in keys else item
    element: Shape | str | None = a.element if b.element is None else b.element if a.element is None else None
    if a.element is not None and b.element is not None:
        if a.element == EMPTY:
            element = b.element
        elif b.element == EMPTY:
            element = a.element
        else:
            element = merge(a.element, b.element)  # type: ignore[arg-type]
    return Shape(a.scalars | b.scalars, keys, element)


def differences(recorded: Any, simulated: Any, types: Shape | None = None) -> list[str]:
    """Where the simulated document's structure departs from the recorded one's, one line each.

    Keys are held against `recorded`; types against `types` when given: the merged shape of
    every recorded document of the kind (a line's image id is "" for a simple product and 0 for a
    variation, a completion date null until the order is completed), so a simulated document
    about other products or in another status is not taken for a different structure.
    """
    return _compare(shape_of(recorded), shape_of(simulated), types or shape_of(recorded), "$")


def _compare(recorded: Shape, simulated: Shape, types: Shape, where: str) -> list[str]:
    found = []
    foreign = simulated.kinds() - types.kinds()
    if foreign:
        found.append(f"{where}: {'/'.join(sorted(foreign))} where the recording has {'/'.join(sorted(types.kinds()))}")
    if recorded.keys is not None and simulated.keys is not None:
        missing = [key for key in recorded.keys if key not in simulated.keys]
        extra = [key for key in simulated.keys if key not in recorded.keys]
        if missing:
            found.append(f"{where}: missing keys {missing}")
        if extra:
            found.append(f"{where}: keys the recording does not have {extra}")
        for key, item in recorded.keys.items():
            if key in simulated.keys:
                found += _compare(item, simulated.keys[key], (types.keys or {}).get(key, item), f"{where}.{key}")
    if isinstance(recorded.element, Shape) and simulated.element is not None:
        if simulated.element == EMPTY:
            found.append(f"{where}: empty, so its elements cannot be compared with the recording's")
        else:
            element_types = types.element if isinstance(types.element, Shape) else recorded.element
            found += _compare(recorded.element, simulated.element, element_types, f"{where}[]")  # type: ignore[arg-type]
    return found


def merged(documents: list[Any]) -> Shape:
    """One shape for many documents of a kind: every key any of them has, every type any of them uses."""
    shapes = [shape_of(document) for document in documents]
    result = shapes[0]
    for shape in shapes[1:]:
        result = merge(result, shape)
    return result
