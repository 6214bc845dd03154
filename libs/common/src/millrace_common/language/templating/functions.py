"""The functions in :data:`TEMPLATE_FUNCTIONS`, bound to one render's clock and id generator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from millrace_common.language import dates
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

    def zone(function_name: str, name: object) -> ZoneInfo:
        name = _defined(name)
        if not isinstance(name, str):
            raise TemplateError(f"{function_name}() takes a time zone name as text, got {_describe(name)}")
        try:
            return dates.zone(name)
        except dates.DateValueError as error:
            raise TemplateError(f"{function_name}(): {error}") from error

    def moment(function_name: str, value: object, *, required: bool) -> datetime | date:
        value = _defined(value)
        if value is None and not required:
            return now
        if _is_number(value):
            return datetime.fromtimestamp(value, UTC)
        read = dates.read_date(value) if isinstance(value, str) else None
        if read is None:
            raise TemplateError(
                f"{function_name}() expects an ISO-8601 date or a Unix timestamp, got {_describe(value)}"
            )
        return read

    def boundary(
        function_name: str, find: Callable[[datetime | date, ZoneInfo], datetime]
    ) -> _TemplateFunction:
        def compute(value: object = None, time_zone: object = "UTC") -> str:
            tz = zone(function_name, time_zone)
            return _iso(find(moment(function_name, value, required=False), tz))

        return _TemplateFunction(function_name, compute)

    def measure(
        function_name: str, find: Callable[[datetime | date, datetime, ZoneInfo], object]
    ) -> _TemplateFunction:
        def compute(value: object, time_zone: object = "UTC") -> object:
            tz = zone(function_name, time_zone)
            return find(moment(function_name, value, required=True), now, tz)

        return _TemplateFunction(function_name, compute)

    return {
        "now": _TemplateFunction("now", lambda: _iso(now)),
        "today": _TemplateFunction("today", lambda: now.date().isoformat()),
        "timestamp": _TemplateFunction("timestamp", timestamp),
        "uuid": _TemplateFunction("uuid", lambda: str(new_id())),
        "days_ago": _TemplateFunction("days_ago", lambda count: _iso(now - days("days_ago", count))),
        "days_from_now": _TemplateFunction(
            "days_from_now", lambda count: _iso(now + days("days_from_now", count))
        ),
        "start_of_day": boundary("start_of_day", dates.start_of_day),
        "end_of_day": boundary("end_of_day", dates.end_of_day),
        "start_of_week": boundary("start_of_week", dates.start_of_week),
        "start_of_month": boundary("start_of_month", dates.start_of_month),
        "days_until": measure("days_until", dates.days_until),
        "days_since": measure("days_since", dates.days_since),
        "is_overdue": measure("is_overdue", dates.is_overdue),
    }
