"""JSON values as every message, record and definition carries them, and the one way to compare two.
Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TypeGuard

from pydantic import JsonValue

JsonObject = dict[str, JsonValue]


def is_number(value: object) -> TypeGuard[int | float]:
    """A JSON number: ``true`` is not one, nor are NaN and the infinities."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def json_equal(left: JsonValue, right: JsonValue) -> bool:
    """Equality by JSON type, deep: ``1`` equals ``1.0``, ``"1"`` is not ``1``, ``true`` is not ``1``,
    lists compare in order, and in objects a key whose value is null is the same as a missing key (a
    record field set to null reads as absent everywhere: conditions, changed fields, templates)."""
    if is_number(left) and is_number(right):
        return left == right
    if type(left) is not type(right):
        return False
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, dict) and isinstance(right, dict):
        keys = {k for k, v in left.items() if v is not None} | {k for k, v in right.items() if v is not None}
        return all(json_equal(left.get(k), right.get(k)) for k in keys)
    return left == right


def describe(value: object) -> str | None:
    """A JSON value as an error message names it (``null``, ``boolean true``, ``number 3``, ``text
    'abc'`` cut at 40 characters, ``a list of 2 items``, ``an object``); None for anything else."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"text '{shown}'"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, Mapping):
        return "an object"
    return None
