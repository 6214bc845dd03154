"""Values as the filters, functions and sandbox see them: whether one is defined, whether it is a
number, how it is named in a message, dates and times read and written; and :class:`_TemplateFunction`,
the one kind of value a template may call."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import TypeGuard

from jinja2.runtime import Undefined
from pydantic import JsonValue

from millrace_common.contracts.json_values import describe
from millrace_common.language.templating.errors import TemplateError

_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}:?\d{2})?)?"
)


class _TemplateFunction:
    """One of :data:`TEMPLATE_FUNCTIONS`, bound to this render's clock; the only thing a template may call."""

    __slots__ = ("_implementation", "name")

    def __init__(self, name: str, implementation: Callable[..., JsonValue]) -> None:
        self.name = name
        self._implementation = implementation

    def __call__(self, *args: object) -> JsonValue:
        return self._implementation(*args)


def _defined(value: object) -> object:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: object) -> str:
    if isinstance(value, _TemplateFunction):
        return f"the function {value.name}()"
    if isinstance(value, Undefined):
        return "an undefined value"
    return describe(value) or "a value that is not data"


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    if moment.utcoffset() == timedelta(0) and text.endswith("+00:00"):
        return text[: -len("+00:00")] + "Z"
    return text


def _parse_instant(filter_name: str, value: object) -> datetime | date:
    value = _defined(value)
    if _is_number(value):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and _ISO_INSTANT.fullmatch(value.strip()):
        text = value.strip()
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    raise TemplateError(f"{filter_name} expects an ISO-8601 date or a Unix timestamp, got {_describe(value)}")


def _format_argument(filter_name: str, pattern: object) -> str | None:
    pattern = _defined(pattern)
    if pattern is None:
        return None
    if not isinstance(pattern, str) or len(pattern) > 200:
        raise TemplateError(f"{filter_name} takes a strftime format text of at most 200 characters")
    return pattern
