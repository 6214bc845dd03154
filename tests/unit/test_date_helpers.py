"""The date helpers (``millrace_common.language.dates``), as template functions and as condition values:
calendar days in a time zone, across daylight-saving changes, checked by examples at the changes and by
properties over random instants in zones with unusual changes (at midnight, by half an hour)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.language import dates
from millrace_common.language.conditions import ConditionError, evaluate, parse_condition
from millrace_common.language.templating import TemplateError, check_template, render_string
from pydantic import ValidationError

pytestmark = pytest.mark.unit

BERLIN = dates.zone("Europe/Berlin")
NEW_YORK = dates.zone("America/New_York")
ZONES = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "America/Santiago",  # changes at midnight: some days have no 00:00
    "America/Havana",  # changes at midnight too
    "Australia/Lord_Howe",  # a 30-minute change
    "Asia/Kolkata",  # a half-hour offset, no change
    "Pacific/Chatham",  # a 45-minute offset with a change
]
instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)
)


def utc(moment: datetime) -> datetime:
    """Arithmetic on aware times of one zone is wall-clock arithmetic in Python: do it in UTC."""
    return moment.astimezone(UTC)


def render(source: str, now: datetime) -> object:
    return render_string(source, {}, now=now, new_id=uuid4)


# -- at the changes -----------------------------------------------------------------------------------


def test_the_day_berlin_springs_forward_has_23_hours_and_the_day_it_falls_back_25():
    spring = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    assert dates.start_of_day(spring, BERLIN).isoformat() == "2026-03-29T00:00:00+01:00"
    assert dates.end_of_day(spring, BERLIN).isoformat() == "2026-03-29T23:59:59.999999+02:00"
    length = utc(dates.end_of_day(spring, BERLIN)) - utc(dates.start_of_day(spring, BERLIN))
    assert length + timedelta(microseconds=1) == timedelta(hours=23)
    autumn = datetime(2026, 10, 25, 12, 0, tzinfo=UTC)
    length = utc(dates.end_of_day(autumn, BERLIN)) - utc(dates.start_of_day(autumn, BERLIN))
    assert length + timedelta(microseconds=1) == timedelta(hours=25)


def test_a_day_whose_midnight_does_not_exist_starts_at_the_change():
    santiago = dates.zone("America/Santiago")
    # 2026-09-06: clocks go from 00:00 to 01:00 in Santiago.
    start = dates.start_of_day(datetime(2026, 9, 6, 18, 0, tzinfo=UTC), santiago)
    assert start.isoformat() == "2026-09-06T01:00:00-03:00"
    assert (utc(start) - timedelta(microseconds=1)).astimezone(santiago).date() == date(2026, 9, 5)


def test_the_week_and_the_month_start_in_the_zones_own_calendar():
    # Sunday 23:30 in New York is already Monday in UTC.
    sunday_night = datetime(2026, 3, 9, 3, 30, tzinfo=UTC)
    assert dates.start_of_week(sunday_night, NEW_YORK).isoformat() == "2026-03-02T00:00:00-05:00"
    assert dates.start_of_week(sunday_night, dates.zone("UTC")).isoformat() == "2026-03-09T00:00:00+00:00"
    assert dates.start_of_month(datetime(2026, 4, 1, 1, 0, tzinfo=UTC), NEW_YORK).isoformat() == (
        "2026-03-01T00:00:00-05:00"
    )


def test_days_until_counts_calendar_days_not_24_hour_periods():
    # 23 hours before the due time, across the spring change, but two calendar days in Berlin.
    now = datetime(2026, 3, 28, 22, 30, tzinfo=UTC)  # 23:30 in Berlin
    assert dates.days_until(date(2026, 3, 30), now, BERLIN) == 2
    assert dates.days_until(datetime(2026, 3, 29, 21, 30, tzinfo=UTC), now, BERLIN) == 1
    assert dates.days_since(date(2026, 3, 1), now, BERLIN) == 27
    assert dates.days_until(date(2026, 3, 29), now, dates.zone("UTC")) == 1


def test_a_date_due_today_is_not_overdue_until_its_day_ends_in_the_zone():
    late_evening = datetime(2026, 3, 29, 21, 0, tzinfo=UTC)  # 23:00 in Berlin, 17:00 in New York
    assert not dates.is_overdue(date(2026, 3, 29), late_evening, BERLIN)
    after_midnight = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)  # 00:30 on the 30th in Berlin
    assert dates.is_overdue(date(2026, 3, 29), after_midnight, BERLIN)
    assert not dates.is_overdue(date(2026, 3, 29), after_midnight, NEW_YORK)
    assert dates.is_overdue(datetime(2026, 3, 29, 22, 0, tzinfo=UTC), after_midnight, NEW_YORK)


def test_adding_days_keeps_the_wall_clock_time_across_a_change():
    before = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)  # 12:00 in Berlin, UTC+1
    after = dates.add_days(before, 1, BERLIN)
    assert after.isoformat() == "2026-03-29T12:00:00+02:00"
    assert utc(after) - before == timedelta(hours=23)


def test_an_unknown_zone_is_a_clear_error():
    with pytest.raises(dates.DateValueError, match="unknown time zone 'Mars/Olympus'"):
        dates.zone("Mars/Olympus")


# -- properties ---------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(moment=instants, zone_name=st.sampled_from(ZONES))
def test_a_moment_lies_within_its_day_and_its_day_within_its_week_and_month(moment, zone_name):
    tz = dates.zone(zone_name)
    local_day = moment.astimezone(tz).date()
    start, end = dates.start_of_day(moment, tz), dates.end_of_day(moment, tz)
    assert start <= moment <= end
    assert start.astimezone(tz).date() == local_day == end.astimezone(tz).date()
    tick = timedelta(microseconds=1)
    assert (utc(start) - tick).astimezone(tz).date() < local_day < (utc(end) + tick).astimezone(tz).date()
    week, month = dates.start_of_week(moment, tz), dates.start_of_month(moment, tz)
    assert month <= start and week <= start
    assert week.astimezone(tz).weekday() == 0 and month.astimezone(tz).day == 1
    assert utc(start) - utc(week) < timedelta(days=7, hours=2)


@settings(max_examples=300, deadline=None)
@given(now=instants, due=instants, zone_name=st.sampled_from(ZONES))
def test_days_until_and_since_mirror_each_other_and_agree_with_overdue(now, due, zone_name):
    tz = dates.zone(zone_name)
    until = dates.days_until(due, now, tz)
    assert dates.days_since(due, now, tz) == -until
    assert until == (due.astimezone(tz).date() - now.astimezone(tz).date()).days
    day = due.astimezone(tz).date()
    assert dates.is_overdue(day, now, tz) == (dates.days_until(day, now, tz) < 0)
    assert dates.is_overdue(due, now, tz) == (due < now)


@settings(max_examples=200, deadline=None)
@given(moment=instants, days=st.integers(-400, 400), zone_name=st.sampled_from(ZONES))
def test_adding_days_moves_the_calendar_date_by_exactly_that_many(moment, days, zone_name):
    tz = dates.zone(zone_name)
    moved = dates.add_days(moment, days, tz)
    assert (moved.astimezone(tz).date() - moment.astimezone(tz).date()).days == days


# -- as template functions ----------------------------------------------------------------------------


def test_the_template_functions_take_a_date_and_a_zone():
    now = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    assert render("{{ start_of_day() }}", now) == "2026-03-29T00:00:00Z"
    assert render('{{ start_of_day(none, "Europe/Berlin") }}', now) == "2026-03-29T00:00:00+01:00"
    assert render('{{ end_of_day(now(), "Europe/Berlin") }}', now) == "2026-03-29T23:59:59.999999+02:00"
    assert render('{{ start_of_week("2026-03-29") }}', now) == "2026-03-23T00:00:00Z"
    assert render('{{ start_of_month(now(), "America/New_York") }}', now) == "2026-03-01T00:00:00-05:00"
    assert render('{{ days_until("2026-04-01") }}', now) == 3
    assert render('{{ days_since("2026-03-01T10:00:00Z", "Europe/Berlin") }}', now) == 28
    assert render('{{ is_overdue("2026-03-28") }}', now) is True
    assert render('{{ is_overdue(start_of_day(none, "Europe/Berlin")) }}', now) is True
    assert render("due in {{ days_until(1775001600) }} days", now) == "due in 3 days"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ days_until() }}", "days_until() takes at least 1 argument (0 given)"),
        ("{{ start_of_day(1, 2, 3) }}", "start_of_day() takes at most 2 arguments (3 given)"),
    ],
)
def test_wrong_argument_counts_are_refused_when_saved(source, message):
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_template(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            '{{ days_until("soon") }}',
            "days_until() expects an ISO-8601 date or a Unix timestamp, got text 'soon'",
        ),
        ('{{ start_of_day(none, "Mars/Olympus") }}', "start_of_day(): unknown time zone 'Mars/Olympus'"),
        ("{{ start_of_week(none, 5) }}", "start_of_week() takes a time zone name as text, got number 5"),
    ],
)
def test_bad_dates_and_zones_fail_the_render_and_name_the_value(source, message):
    with pytest.raises(TemplateError) as raised:
        render(source, datetime(2026, 3, 29, tzinfo=UTC))
    assert message in str(raised.value)


# -- as condition values ------------------------------------------------------------------------------


def holds(condition: dict, data: dict, now: datetime) -> bool:
    return evaluate(parse_condition(condition), {"trigger": data}, now=now)


def test_condition_values_name_the_start_of_the_day_week_and_month_in_the_comparisons_zone():
    now = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)  # Monday 00:30 in Berlin, Sunday 18:30 in New York
    since_today = {"field": "trigger.at", "operator": "after", "value": "start_of_day"}
    at = {"at": "2026-03-29T22:00:00Z"}
    assert holds(since_today, at, now)  # UTC: the 29th
    assert not holds({**since_today, "time_zone": "Europe/Berlin"}, at, now)  # Berlin: the 30th began
    this_week = {"field": "trigger.at", "operator": "after", "value": "start_of_week"}
    sunday = {"at": "2026-03-29T10:00:00Z"}
    assert not holds({**this_week, "time_zone": "Europe/Berlin"}, sunday, now)
    assert holds({**this_week, "time_zone": "America/New_York"}, sunday, now)
    month = {"field": "trigger.at", "operator": "before", "value": "start_of_month", "time_zone": "UTC"}
    assert holds(month, {"at": "2026-02-28"}, now)
    ends = {"field": "trigger.at", "operator": "before", "value": "end_of_day", "time_zone": "Europe/Berlin"}
    assert holds(ends, {"at": "2026-03-30T21:59:59Z"}, now)
    assert not holds(ends, {"at": "2026-03-30T22:00:00Z"}, now)


def test_a_date_without_a_time_reads_as_the_start_of_that_day_in_the_zone():
    now = datetime(2026, 3, 29, 22, 30, tzinfo=UTC)
    overdue = {"field": "trigger.due", "operator": "before", "value": "today", "time_zone": "Europe/Berlin"}
    assert holds(overdue, {"due": "2026-03-29"}, now)
    assert not holds({**overdue, "time_zone": "America/New_York"}, {"due": "2026-03-29"}, now)


def test_a_relative_day_offset_is_calendar_days_in_the_zone():
    now = datetime(2026, 3, 28, 11, 0, tzinfo=UTC)  # 12:00 in Berlin, the day before the change
    tomorrow = {"field": "trigger.at", "operator": "before", "value": "+1d", "time_zone": "Europe/Berlin"}
    # 12:00 tomorrow in Berlin is 10:00 UTC: 23 hours away, not 24.
    assert not holds(tomorrow, {"at": "2026-03-29T10:30:00Z"}, now)
    assert holds({**tomorrow, "time_zone": "UTC"}, {"at": "2026-03-29T10:30:00Z"}, now)


def test_a_relative_value_still_needs_now_and_an_unknown_zone_is_refused_when_parsed():
    with pytest.raises(ConditionError, match="needs now"):
        evaluate(
            parse_condition({"field": "x", "operator": "before", "value": "start_of_week"}),
            {"x": "2026-01-01"},
        )
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        parse_condition({"field": "x", "operator": "before", "value": "today", "time_zone": "Mars/Olympus"})
