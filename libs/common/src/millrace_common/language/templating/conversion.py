"""Values written out, as JSON data (:func:`_to_json`) and as text (:func:`_as_text`), each charged to
the render's budget before it is built."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn

from pydantic import JsonValue

from millrace_common.language.templating.errors import TemplateError
from millrace_common.language.templating.limits import _Budget, _budget
from millrace_common.language.templating.values import _defined, _describe


def _to_json(value: object) -> JsonValue:
    """``value`` as JSON data, walked without recursion. Each list and object is charged to the render's
    budget (its items, and its brackets, commas and keys as bytes) before its copy is made, and its
    scalars their bytes, so a value that would be too large as JSON is refused before it is written
    out, however many references it shares inside."""
    budget = _budget()
    value = _defined(value)
    if value is None or isinstance(value, (str, int, float)):
        budget.spend(items=1, size=_scalar_size(value))
        return value  # type: ignore[return-value]
    items_left, bytes_left = budget.items - 1, budget.bytes
    root: list[JsonValue] = [None]
    # (a value, the copy its JSON goes into, under which index or key); scalars are done in place
    pending: list[tuple[object, Any, Any]] = [(value, root, 0)]
    while pending:
        source, parent, key = pending.pop()
        if isinstance(source, (list, tuple)):
            items_left -= len(source)
            bytes_left -= len(source) + 1
            if items_left < 0 or bytes_left < 0:
                _overspent(budget, items_left, bytes_left)
            copy: Any = list(source)
            members: Iterable[tuple[Any, object]] = enumerate(copy)
        elif isinstance(source, Mapping):
            items_left -= len(source)
            bytes_left -= len(source) + 1
            if items_left < 0 or bytes_left < 0:
                _overspent(budget, items_left, bytes_left)
            for name in source:
                if type(name) is not str:
                    raise TemplateError(f"object keys must be text, not {_describe(name)}")
                bytes_left -= (len(name) if name.isascii() else _utf8_size(name)) + 3
            copy = dict(source)
            members = copy.items()
        else:  # pushed below: not a plain scalar (an undefined value, a str or int subclass, ...)
            source = _defined(source)
            if not (source is None or isinstance(source, (str, int, float))):
                raise TemplateError(f"{_describe(source)} cannot be used as a value")
            bytes_left -= _scalar_size(source)
            parent[key] = source
            continue
        parent[key] = copy
        nested: list[tuple[object, Any, Any]] = []
        for at, member in members:
            kind = type(member)
            if kind is str:
                bytes_left -= (len(member) if member.isascii() else _utf8_size(member)) + 2  # type: ignore[attr-defined,arg-type]
            elif kind is int:
                bytes_left -= member.bit_length() * 77 // 256 + 2  # type: ignore[attr-defined]
            elif member is None or kind is bool:
                bytes_left -= 5
            elif kind is float:
                bytes_left -= _scalar_size(member)  # type: ignore[arg-type]
            else:
                nested.append((member, copy, at))
        if bytes_left < 0:
            _overspent(budget, items_left, bytes_left)
        pending.extend(reversed(nested))  # depth first, in the order the value reads
    budget.items, budget.bytes = items_left, bytes_left
    return root[0]


def _overspent(budget: _Budget, items_left: int, bytes_left: int) -> NoReturn:
    budget.items, budget.bytes = items_left, bytes_left
    budget.spend()
    raise AssertionError("spend() raises when the budget is overspent")


def _scalar_size(value: str | float | None) -> int:
    """About the bytes of a scalar as JSON (a string's escapes aside); a non-finite number is refused."""
    if isinstance(value, str):
        return _utf8_size(value) + 2
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return abs(value).bit_length() * 77 // 256 + 2  # its decimal digits, from its bits, and a sign
    if not math.isfinite(value):
        raise TemplateError("the result is not a finite number")
    return 24


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _as_text(value: object) -> str:
    """How a value reads inside text: null is empty, booleans are true/false, lists and objects are JSON.
    What is written is charged to the render's budget (lists and objects through :func:`_to_json`)."""
    value = _defined(value)
    if isinstance(value, str):
        _budget().spend(size=_utf8_size(value))
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(_to_json(value))
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(_to_json(value), ensure_ascii=False, separators=(",", ":"))
    raise TemplateError(f"{_describe(value)} cannot be written as text")
