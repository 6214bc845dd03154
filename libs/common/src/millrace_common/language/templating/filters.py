"""The filters in :data:`TEMPLATE_FILTERS` and the tests ``is defined``, ``is number`` and the rest.
A filter that walks a list or writes text charges it to the render's budget."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from jinja2.runtime import Undefined

from millrace_common.language.templating.conversion import _as_text, _to_json, _utf8_size
from millrace_common.language.templating.errors import TemplateError
from millrace_common.language.templating.limits import _budget
from millrace_common.language.templating.values import (
    _defined,
    _describe,
    _format_argument,
    _is_number,
    _iso,
    _parse_instant,
)

_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW"})


_Items = TypeVar("_Items", Sequence[object], Mapping[str, object])


def _text(filter_name: str, value: object) -> str:
    value = _defined(value)
    if not isinstance(value, str):
        raise TemplateError(f"{filter_name} expects text, got {_describe(value)}")
    return value


def _sequence(filter_name: str, value: object) -> Sequence[object]:
    value = _defined(value)
    if not isinstance(value, (list, tuple, str)):
        raise TemplateError(f"{filter_name} expects a list, got {_describe(value)}")
    return value


def _mapping(filter_name: str, value: object) -> Mapping[str, object]:
    value = _defined(value)
    if not isinstance(value, Mapping):
        raise TemplateError(f"{filter_name} expects an object, got {_describe(value)}")
    return value


def _length(value: object) -> int:
    value = _defined(value)
    if not isinstance(value, (str, list, tuple, Mapping)):
        raise TemplateError(f"length expects text, a list or an object, got {_describe(value)}")
    return len(value)


def _first(value: object) -> object:
    items = _sequence("first", value)
    return items[0] if items else None


def _last(value: object) -> object:
    items = _sequence("last", value)
    return items[-1] if items else None


def _numbers(filter_name: str, value: object) -> list[int | float]:
    numbers: list[int | float] = []
    for item in _read(_sequence(filter_name, value)):
        number = _defined(item)
        if not _is_number(number):
            raise TemplateError(f"{filter_name} expects a list of numbers, found {_describe(number)}")
        numbers.append(number)
    return numbers


def _sum(value: object) -> int | float:
    return sum(_numbers("sum", value))


def _orderable(filter_name: str, value: object) -> list[int | float] | list[str]:
    items = [_defined(item) for item in _read(_sequence(filter_name, value))]
    numbers = [item for item in items if _is_number(item)]
    if len(numbers) == len(items):
        return numbers
    texts = [item for item in items if isinstance(item, str)]
    if len(texts) == len(items):
        return texts
    raise TemplateError(f"{filter_name} expects a list of numbers or a list of texts")


def _min(value: object) -> int | float | str | None:
    items = _orderable("min", value)
    return min(items) if items else None


def _max(value: object) -> int | float | str | None:
    items = _orderable("max", value)
    return max(items) if items else None


def _join(value: object, separator: object = "") -> str:
    items = _read(_sequence("join", value))
    between = _text("join's separator", separator)
    _budget().spend(size=_utf8_size(between) * max(len(items) - 1, 0))
    return between.join([_as_text(item) for item in items])  # each piece is charged as it is written


def _json(value: object, indent: object = None) -> str:
    indent = _defined(indent)
    if indent is not None and not (
        isinstance(indent, int) and not isinstance(indent, bool) and 0 <= indent <= 8
    ):
        raise TemplateError("json takes an indent between 0 and 8")
    separators = (",", ":") if indent is None else None
    return json.dumps(_to_json(value), ensure_ascii=False, indent=indent, separators=separators)


def _keys(value: object) -> list[str]:
    return list(_read(_mapping("keys", value)))


def _values(value: object) -> list[object]:
    return list(_read(_mapping("values", value)).values())


def _read(items: _Items) -> _Items:
    """A list or object a filter walks or copies: each of its items is charged to the render's budget."""
    _budget().spend(items=len(items))
    return items


def _written(text: str) -> str:
    """Text a filter made: charged to the render's budget (repeated, it would cost memory unbounded)."""
    _budget().spend(size=_utf8_size(text))
    return text


def _default(value: object, fallback: object = "") -> object:
    if isinstance(value, Undefined) or value is None:
        return fallback
    return value


def _currency(value: object, code: object = "USD") -> str:
    amount = _defined(value)
    if not _is_number(amount):
        raise TemplateError(f"currency expects a number, got {_describe(amount)}")
    code = _defined(code)
    if not (isinstance(code, str) and re.fullmatch(r"[A-Za-z]{3}", code)):
        raise TemplateError(f"currency takes a three-letter currency code, got {_describe(code)}")
    code = code.upper()
    places = Decimal(1) if code in _ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    rounded = Decimal(repr(amount)).quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    digits = f"{abs(rounded):,}"
    if code in _CURRENCY_SYMBOLS:
        return f"{sign}{_CURRENCY_SYMBOLS[code]}{digits}"
    return f"{sign}{digits} {code}"


def _date(value: object, pattern: object = None) -> str:
    instant = _parse_instant("date", value)
    chosen = _format_argument("date", pattern)
    if chosen is not None:
        return instant.strftime(chosen)
    return (instant.date() if isinstance(instant, datetime) else instant).isoformat()


def _datetime(value: object, pattern: object = None) -> str:
    instant = _parse_instant("datetime", value)
    if not isinstance(instant, datetime):
        instant = datetime(instant.year, instant.month, instant.day)
    chosen = _format_argument("datetime", pattern)
    return instant.strftime(chosen) if chosen is not None else _iso(instant)


_FILTERS: Mapping[str, Callable[..., object]] = {
    "upper": lambda value: _written(_text("upper", value).upper()),
    "lower": lambda value: _written(_text("lower", value).lower()),
    "title": lambda value: _written(_text("title", value).title()),
    "trim": lambda value: _written(_text("trim", value).strip()),
    "length": _length,
    "first": _first,
    "last": _last,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "join": _join,
    "json": _json,
    "keys": _keys,
    "values": _values,
    "default": _default,
    "currency": _currency,
    "date": _date,
    "datetime": _datetime,
}
_TESTS: Mapping[str, Callable[[object], bool]] = {
    "defined": lambda value: not isinstance(value, Undefined),
    "undefined": lambda value: isinstance(value, Undefined),
    "none": lambda value: value is None,
    "boolean": lambda value: isinstance(value, bool),
    "number": _is_number,
    "string": lambda value: isinstance(value, str),
    "mapping": lambda value: isinstance(value, Mapping),
    "sequence": lambda value: isinstance(value, (list, tuple)),
    "even": lambda value: isinstance(value, int) and not isinstance(value, bool) and value % 2 == 0,
    "odd": lambda value: isinstance(value, int) and not isinstance(value, bool) and value % 2 == 1,
}
