"""Calendar dates in a time zone: where a day, a week (from Monday) and a month begin and end, how many
calendar days lie between two moments, and whether a due date has passed. Used by the template
functions (``start_of_day``, ``days_until``, ...) and by the relative values of conditions.

Pure: the current time is always passed in. Zones are IANA names read with :mod:`zoneinfo`. A day is
a calendar day of the zone, not 24 hours: across a daylight-saving change a day lasts 23 or 25 hours
(or 23.5, in Lord Howe), and ``start_of_day`` is the first instant whose local date is that day, also
where local midnight does not exist (a change at midnight, as in Santiago or Havana).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MAX_ZONE_CHARS = 64
_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}:?\d{2})?)?"
)
_ONE_MICROSECOND = timedelta(microseconds=1)


class DateValueError(ValueError):
    """A zone name or a date that cannot be read; the message names it."""


@functools.lru_cache(maxsize=128)
def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name`` (``Europe/Berlin``, ``UTC``); :class:`DateValueError` when unknown."""
    if not isinstance(name, str) or not name or len(name) > MAX_ZONE_CHARS:
        raise DateValueError(f"a time zone is an IANA name such as 'Europe/Berlin', got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise DateValueError(f"unknown time zone {name!r}") from error


def read_date(text: str) -> datetime | date | None:
    """An ISO-8601 date (a :class:`date`) or date-time (an aware :class:`datetime`, UTC when it names
    no offset); None when ``text`` is neither."""
    stripped = text.strip()
    if not _ISO_INSTANT.fullmatch(stripped):
        return None
    try:
        if len(stripped) == 10:
            return date.fromisoformat(stripped)
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local_date(value: datetime | date, tz: ZoneInfo) -> date:
    """The calendar date of ``value`` in ``tz``; a date without a time is that date wherever it is read."""
    if isinstance(value, datetime):
        return _aware(value).astimezone(tz).date()
    return value


def day_start(day: date, tz: ZoneInfo) -> datetime:
    """The first instant of ``day`` in ``tz``, as a time of that zone."""
    # A local midnight that a change skips (fold 0 reads it with the offset before the change) is the
    # instant of the change itself; the round trip through UTC writes it with the offset after it.
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    return midnight.astimezone(UTC).astimezone(tz)


def start_of_day(moment: datetime | date, tz: ZoneInfo) -> datetime:
    return day_start(local_date(moment, tz), tz)


def end_of_day(moment: datetime | date, tz: ZoneInfo) -> datetime:
    """The last microsecond of the day: the next day's start less one microsecond."""
    following = local_date(moment, tz) + timedelta(days=1)
    return (day_start(following, tz).astimezone(UTC) - _ONE_MICROSECOND).astimezone(tz)


def start_of_week(moment: datetime | date, tz: ZoneInfo) -> datetime:
    """The start of the Monday of the moment's week (ISO weeks begin on Monday)."""
    day = local_date(moment, tz)
    return day_start(day - timedelta(days=day.weekday()), tz)


def start_of_month(moment: datetime | date, tz: ZoneInfo) -> datetime:
    return day_start(local_date(moment, tz).replace(day=1), tz)


def add_days(moment: datetime, days: int, tz: ZoneInfo) -> datetime:
    """The same wall-clock time ``days`` calendar days later (earlier when negative) in ``tz``; a time a
    change skips moves forward by the change."""
    local = _aware(moment).astimezone(tz)
    shifted = local.replace(tzinfo=None) + timedelta(days=days)
    return shifted.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)


def days_until(value: datetime | date, now: datetime, tz: ZoneInfo) -> int:
    """Calendar days from today (in ``tz``) to the value's date: 0 today, 1 tomorrow, -1 yesterday."""
    return (local_date(value, tz) - local_date(now, tz)).days


def days_since(value: datetime | date, now: datetime, tz: ZoneInfo) -> int:
    """Calendar days from the value's date to today (in ``tz``): 1 for yesterday."""
    return -days_until(value, now, tz)


def is_overdue(value: datetime | date, now: datetime, tz: ZoneInfo) -> bool:
    """A date-time is overdue once it has passed; a date without a time once its day has ended in
    ``tz`` (a date due today is not overdue yet)."""
    if isinstance(value, datetime):
        return _aware(value) < _aware(now)
    return value < local_date(now, tz)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
