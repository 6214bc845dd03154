"""Evaluating a condition against a run's data, and what each operator does.

Evaluation is pure and typed: numbers compare with numbers, dates with dates, text with text, and
anything else is a :class:`ConditionError` that names both sides.

A field that is missing reads as null. Null is "no value": it is empty, it equals only null, and it never
satisfies an ordering, text, pattern or length test (so ``not_contains`` and ``not_in`` hold for it).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import TypeVar

import re2
from pydantic import JsonValue

from millrace_common.contracts.json_values import describe, is_number, json_equal
from millrace_common.language.conditions.model import AllOf, AnyOf, Comparison, Condition, Negation, Operator

MAX_PATTERN_CHARS = 1000

_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}:?\d{2})?)?"
)
_RELATIVE = re.compile(r"([+-])(\d{1,6})([hdw])")
_RELATIVE_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}


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
            return _contains(operator, actual, expected)
        case Operator.NOT_CONTAINS:
            return not _contains(operator, actual, expected)
        case Operator.STARTS_WITH:
            prefix = _text_value(operator, expected)
            return actual is not None and _text(operator, actual).startswith(prefix)
        case Operator.ENDS_WITH:
            suffix = _text_value(operator, expected)
            return actual is not None and _text(operator, actual).endswith(suffix)
        case Operator.MATCHES:
            pattern = _pattern(_text_value(operator, expected))
            return actual is not None and pattern.search(_text(operator, actual)) is not None
        case Operator.LENGTH_EQUALS | Operator.LENGTH_GREATER_THAN | Operator.LENGTH_LESS_THAN:
            return _length_test(operator, actual, expected)
        case Operator.BEFORE | Operator.AFTER:
            bound = _date_value(operator, expected, now)
            if actual is None:
                return False
            moment = _date(operator, actual)
            return moment < bound if operator is Operator.BEFORE else moment > bound
        case Operator.BETWEEN:
            if expected is None or comparison.value_to is None:
                raise ConditionError("between needs both value and value_to")
            above_low = _order(operator, actual, expected, now)
            below_high = _order(operator, actual, comparison.value_to, now)
            return above_low is not None and below_high is not None and above_low >= 0 and below_high <= 0
    order = _order(operator, actual, expected, now)
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


def _contains(operator: Operator, actual: JsonValue, expected: JsonValue) -> bool:
    if actual is None:
        return False
    if isinstance(actual, str):
        return _text_value(operator, expected) in actual
    if isinstance(actual, list):
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


def _order(operator: Operator, actual: JsonValue, expected: JsonValue, now: datetime | None) -> int | None:
    """-1, 0 or 1 as the field's value is below, at or above ``expected``; None when the field has no value.

    Numbers order as numbers; text orders as dates when both sides are ISO-8601 dates (or the expected
    side is relative, like "today"), otherwise by code point.
    """
    if expected is None:
        raise ConditionError(f"{operator} needs a value to compare with")
    relative = _relative(expected, now) if isinstance(expected, str) else None
    if actual is None:
        return None
    if is_number(actual) and is_number(expected):
        return _sign(actual, expected)
    if isinstance(actual, str) and isinstance(expected, str):
        moment = _instant(actual)
        bound = relative if relative is not None else _instant(expected)
        if moment is not None and bound is not None:
            return _sign(moment, bound)
        if relative is None:
            return _sign(actual, expected)
    raise ConditionError(f"cannot compare {_describe(actual)} with {_describe(expected)} using {operator}")


_Ordered = TypeVar("_Ordered", float, str, datetime)


def _sign(left: _Ordered, right: _Ordered) -> int:
    return (left > right) - (left < right)


def _date_value(operator: Operator, expected: JsonValue, now: datetime | None) -> datetime:
    if isinstance(expected, str):
        bound = _relative(expected, now) or _instant(expected)
        if bound is not None:
            return bound
    raise ConditionError(
        f"{operator} needs an ISO-8601 date or 'now', 'today', '+7d', '-2h', '+1w'; got {_describe(expected)}"
    )


def _date(operator: Operator, actual: JsonValue) -> datetime:
    moment = _instant(actual) if isinstance(actual, str) else None
    if moment is None:
        raise ConditionError(f"{operator} expects a date, got {_describe(actual)}")
    return moment


def _instant(text: str) -> datetime | None:
    """An ISO-8601 date or date-time as an aware instant; one without an offset is taken as UTC."""
    stripped = text.strip()
    if not _ISO_INSTANT.fullmatch(stripped):
        return None
    try:
        moment = (
            datetime.combine(date.fromisoformat(stripped), datetime.min.time())
            if len(stripped) == 10
            else datetime.fromisoformat(stripped)
        )
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _relative(text: str, now: datetime | None) -> datetime | None:
    """'now', 'today' (midnight UTC) or an offset from now like '+7d', '-30d', '+2h', '+1w'."""
    token = text.strip().lower()
    offset = _RELATIVE.fullmatch(token)
    if token not in {"now", "today"} and offset is None:
        return None
    if now is None:
        raise ConditionError(f"'{text}' is relative to the current time, so evaluate needs now")
    current = (now if now.tzinfo is not None else now.replace(tzinfo=UTC)).astimezone(UTC)
    if token == "now":
        return current
    if token == "today":
        return current.replace(hour=0, minute=0, second=0, microsecond=0)
    assert offset is not None
    sign, count, unit = offset.groups()
    step = int(count) * _RELATIVE_UNITS[unit]
    return current + step if sign == "+" else current - step


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
