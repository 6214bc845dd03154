"""What changed between two states of a record. Pure.

A missing field reads as null, so adding a field with a null value, or removing a null field, is no
change. Values compare by JSON type, as conditions do: ``1`` equals ``1.0``, ``"1"`` is not ``1``,
``true`` is not ``1``, and lists and objects compare deeply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from millrace_common.contracts.json_values import json_equal
from millrace_common.language.workflow import WatchedField
from pydantic import JsonValue


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: JsonValue
    new: JsonValue


def read_field(data: Mapping[str, JsonValue] | None, field: str) -> JsonValue:
    """The value at a dotted path (``status``, ``address.city``, ``lines.0.sku``); null when absent."""
    value: JsonValue = dict(data) if data is not None else None
    for part in field.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def changed_fields(old: Mapping[str, JsonValue], new: Mapping[str, JsonValue]) -> tuple[str, ...]:
    """The top-level fields whose values differ, in sorted order."""
    return tuple(sorted(k for k in old.keys() | new.keys() if not json_equal(old.get(k), new.get(k))))


def watched_changes(
    watched: Sequence[WatchedField], old: Mapping[str, JsonValue], new: Mapping[str, JsonValue]
) -> tuple[FieldChange, ...]:
    """The watched fields that changed, each from one of its ``from`` values to one of its ``to``
    values when those are given (``[null]`` stands for empty)."""
    found = []
    for spec in watched:
        before, after = read_field(old, spec.field), read_field(new, spec.field)
        if json_equal(before, after):
            continue
        if spec.from_values is not None and not _one_of(before, spec.from_values):
            continue
        if spec.to_values is not None and not _one_of(after, spec.to_values):
            continue
        found.append(FieldChange(spec.field, before, after))
    return tuple(found)


def _one_of(value: JsonValue, allowed: Sequence[JsonValue]) -> bool:
    return any(json_equal(value, candidate) for candidate in allowed)
