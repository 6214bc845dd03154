"""Evaluating a condition against a run's data, and what each operator does.

Evaluation is pure and typed: numbers compare with numbers, dates with dates, text with text, and
anything else is a :class:`ConditionError` that names both sides.

A field that is missing reads as null. Null is "no value": it is empty, it equals only null, and it never
satisfies an ordering, text, pattern or length test (so ``not_contains`` and ``not_in`` hold for it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

import re2
from pydantic import JsonValue

from millrace_common.contracts.json_values import describe, is_number, json_equal
from millrace_common.language import dates
from millrace_common.language.conditions.model import AllOf, AnyOf, Comparison, Condition, Negation, Operator

MAX_PATTERN_CHARS = 1000

_RELATIVE = re.compile(r"([+-])(\d{1,6})([hdw])")
_CALENDAR: Mapping[str, Callable[[datetime, ZoneInfo], datetime]] = {
    "today": dates.start_of_day,
    "start_of_day": dates.start_of_day,
    "end_of_day": dates.end_of_day,
    "start_of_week": dates.start_of_week,
    "start_of_month": dates.start_of_month,
}
RELATIVE_VALUES = frozenset({"now", *_CALENDAR})
"""The relative values a condition compares dates with, besides offsets such as '+7d'."""


class ConditionError(ValueError):
    """A condition that cannot be evaluated against this data; the message names the values involved."""


def evaluate(condition: Condition, context: Mapping[str, JsonValue], *, now: datetime | None = None) -> bool:
    """Whether ``condition`` holds for ``context``; ``and``/``or`` stop at the first deciding branch.

    ``now`` resolves relative dates in values ("now", "today", "+7d", "-2h", "+1w"); without it such a
    value raises :class:`ConditionError`, as do type mismatches, bad values and invalid patterns.
    """
    if isinstance(condition, AllOf):
        return all(evaluate(child, context, now=now) for child in condition.all)
    if isinstance(condition, AnyOf):
        return any(evaluate(child, context, now=now) for child in condition.any)
    if isinstance(condition, Negation):
        return not evaluate(condition.condition, context, now=now)
    return _compare(condition, _read(context, condition.field), now)


def _read(context: Mapping[str, JsonValue], field: str) -> JsonValue:
    root, *rest = field.split(".")
    value = context.get(root)
    for part in rest:
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


# --- the operators ----------------------------------------------------------------------------------


def _compare(comparison: Comparison, actual: JsonValue, now: datetime | None) -> bool:
    operator, expected = comparison.operator, comparison.value
    tz = dates.zone(comparison.time_zone or "UTC")
    fold = _casefold if comparison.ignore_case else _same
    match operator:
        case Operator.EQUALS:
            return json_equal(actual, expected)
        case Operator.NOT_EQUALS:
            return not json_equal(actual, expected)
        case Operator.IS_EMPTY:
            return _is_empty(actual)
        case Operator.IS_NOT_EMPTY:
            return not _is_empty(actual)
        case Operator.IN:
            return any(json_equal(actual, item) for item in _list_value(operator, expected))
        case Operator.NOT_IN:
            return not any(json_equal(actual, item) for item in _list_value(operator, expected))
        case Operator.CONTAINS:
            return _contains(operator, actual, expected, fold)
        case Operator.NOT_CONTAINS:
            return not _contains(operator, actual, expected, fold)
        case Operator.STARTS_WITH:
            prefix = fold(_text_value(operator, expected))
            return actual is not None and fold(_text(operator, actual)).startswith(prefix)
        case Operator.ENDS_WITH:
            suffix = fold(_text_value(operator, expected))
            return actual is not None and fold(_text(operator, actual)).endswith(suffix)
        case Operator.MATCHES:
            pattern = _pattern(_text_value(operator, expected))
            return actual is not None and pattern.search(_text(operator, actual)) is not None
        case Operator.LENGTH_EQUALS | Operator.LENGTH_GREATER_THAN | Operator.LENGTH_LESS_THAN:
            return _length_test(operator, actual, expected)
        case Operator.BEFORE | Operator.AFTER:
            bound = _date_value(operator, expected, now, tz)
            if actual is None:
                return False
            moment = _date(operator, actual, tz)
            return moment < bound if operator is Operator.BEFORE else moment > bound
        case Operator.BETWEEN:
            if expected is None or comparison.value_to is None:
                raise ConditionError("between needs both value and value_to")
            above_low = _order(operator, actual, expected, now, tz)
            below_high = _order(operator, actual, comparison.value_to, now, tz)
            return above_low is not None and below_high is not None and above_low >= 0 and below_high <= 0
    order = _order(operator, actual, expected, now, tz)
    if order is None:
        return False
    match operator:
        case Operator.GREATER_THAN:
            return order > 0
        case Operator.GREATER_THAN_OR_EQUALS:
            return order >= 0
        case Operator.LESS_THAN:
            return order < 0
        case _:
            return order <= 0


def _is_empty(value: JsonValue) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and len(value) == 0)


def _same(text: str) -> str:
    return text


def _casefold(text: str) -> str:
    return text.casefold()


def _contains(operator: Operator, actual: JsonValue, expected: JsonValue, fold: Callable[[str], str]) -> bool:
    if actual is None:
        return False
    if isinstance(actual, str):
        return fold(_text_value(operator, expected)) in fold(actual)
    if isinstance(actual, list):
        if fold is _casefold and isinstance(expected, str):
            wanted = fold(expected)
            return any(isinstance(item, str) and fold(item) == wanted for item in actual)
        return any(json_equal(item, expected) for item in actual)
    raise ConditionError(f"{operator} works on text and lists, not on {_describe(actual)}")


def _length_test(operator: Operator, actual: JsonValue, expected: JsonValue) -> bool:
    if not (isinstance(expected, int) and not isinstance(expected, bool) and expected >= 0):
        raise ConditionError(f"{operator} needs a whole number of at least 0, got {_describe(expected)}")
    if actual is None:
        return False
    if not isinstance(actual, (str, list, dict)):
        raise ConditionError(f"{operator} works on text, lists and objects, not on {_describe(actual)}")
    if operator is Operator.LENGTH_EQUALS:
        return len(actual) == expected
    if operator is Operator.LENGTH_GREATER_THAN:
        return len(actual) > expected
    return len(actual) < expected


def _order(
    operator: Operator, actual: JsonValue, expected: JsonValue, now: datetime | None, tz: ZoneInfo
) -> int | None:
    """-1, 0 or 1 as the field's value is below, at or above ``expected``; None when the field has no value.

    Numbers order as numbers; text orders as dates when both sides are ISO-8601 dates (or the expected
    side is relative, like "today"), otherwise by code point.
    """
    if expected is None:
        raise ConditionError(f"{operator} needs a value to compare with")
    relative = _relative(expected, now, tz) if isinstance(expected, str) else None
    if actual is None:
        return None
    if is_number(actual) and is_number(expected):
        return _sign(actual, expected)
    if isinstance(actual, str) and isinstance(expected, str):
        moment = _instant(actual, tz)
        bound = relative if relative is not None else _instant(expected, tz)
        if moment is not None and bound is not None:
            return _sign(moment, bound)
        if relative is None:
            return _sign(actual, expected)
    raise ConditionError(f"cannot compare {_describe(actual)} with {_describe(expected)} using {operator}")


_Ordered = TypeVar("_Ordered", float, str, datetime)


def _sign(left: _Ordered, right: _Ordered) -> int:
    return (left > right) - (left < right)


def _date_value(operator: Operator, expected: JsonValue, now: datetime | None, tz: ZoneInfo) -> datetime:
    if isinstance(expected, str):
        bound = _relative(expected, now, tz) or _instant(expected, tz)
        if bound is not None:
            return bound
    raise ConditionError(
        f"{operator} needs an ISO-8601 date or 'now', 'today', '+7d', '-2h', '+1w'; got {_describe(expected)}"
    )


def _date(operator: Operator, actual: JsonValue, tz: ZoneInfo) -> datetime:
    moment = _instant(actual, tz) if isinstance(actual, str) else None
    if moment is None:
        raise ConditionError(f"{operator} expects a date, got {_describe(actual)}")
    return moment


def _instant(text: str, tz: ZoneInfo) -> datetime | None:
    """An ISO-8601 date or date-time as an aware instant; a date alone is its first instant in ``tz``,
    a date-time without an offset is UTC."""
    read = dates.read_date(text)
    if read is None or isinstance(read, datetime):
        return read
    return dates.day_start(read, tz)


def _relative(text: str, now: datetime | None, tz: ZoneInfo) -> datetime | None:
    """'now'; 'today' (the start of today), 'start_of_day', 'end_of_day', 'start_of_week' (Monday) or
    'start_of_month', of now's day in ``tz``; or an offset from now like '+7d', '-30d', '+2h', '+1w'
    (days and weeks are calendar days in ``tz``: the same wall-clock time, across a DST change too)."""
    token = text.strip().lower()
    offset = _RELATIVE.fullmatch(token)
    if token not in RELATIVE_VALUES and offset is None:
        return None
    if now is None:
        raise ConditionError(f"'{text}' is relative to the current time, so evaluate needs now")
    current = (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).astimezone(UTC)
    if token == "now":
        return current
    if token in _CALENDAR:
        return _CALENDAR[token](current, tz)
    assert offset is not None
    sign, count, unit = offset.groups()
    steps = int(count) if sign == "+" else -int(count)
    if unit == "h":
        return current + timedelta(hours=steps)
    return dates.add_days(current, steps * (7 if unit == "w" else 1), tz)


@functools.lru_cache(maxsize=256)
def _pattern(pattern: str) -> re2._Regexp:
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ConditionError(f"a pattern may be at most {MAX_PATTERN_CHARS} characters")
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        raise ConditionError(f"invalid pattern '{pattern}': {reason}") from error


def _text(operator: Operator, actual: JsonValue) -> str:
    if not isinstance(actual, str):
        raise ConditionError(f"{operator} works on text, not on {_describe(actual)}")
    return actual


def _text_value(operator: Operator, expected: JsonValue) -> str:
    if not isinstance(expected, str):
        raise ConditionError(f"{operator} needs a text value, got {_describe(expected)}")
    return expected


def _list_value(operator: Operator, expected: JsonValue) -> list[JsonValue]:
    if not isinstance(expected, list):
        raise ConditionError(f"{operator} needs a list value, got {_describe(expected)}")
    return expected


def _describe(value: JsonValue) -> str:
    return describe(value) or "an object"
