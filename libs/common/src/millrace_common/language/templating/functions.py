"""The functions in :data:`TEMPLATE_FUNCTIONS`, bound to one render's clock and id generator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from millrace_common.language.templating.errors import TemplateError
from millrace_common.language.templating.values import (
    _defined,
    _describe,
    _is_number,
    _iso,
    _TemplateFunction,
)


def _functions(now: datetime, new_id: Callable[[], UUID]) -> dict[str, _TemplateFunction]:
    def days(function_name: str, count: object) -> timedelta:
        count = _defined(count)
        if not _is_number(count):
            raise TemplateError(f"{function_name}() expects a number of days, got {_describe(count)}")
        return timedelta(days=count)

    def timestamp() -> int:
        aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        return int(aware.timestamp())

    return {
        "now": _TemplateFunction("now", lambda: _iso(now)),
        "today": _TemplateFunction("today", lambda: now.date().isoformat()),
        "timestamp": _TemplateFunction("timestamp", timestamp),
        "uuid": _TemplateFunction("uuid", lambda: str(new_id())),
        "days_ago": _TemplateFunction("days_ago", lambda count: _iso(now - days("days_ago", count))),
        "days_from_now": _TemplateFunction(
            "days_from_now", lambda count: _iso(now + days("days_from_now", count))
        ),
    }
