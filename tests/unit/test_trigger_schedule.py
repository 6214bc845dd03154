"""Cron slots in a time zone, across DST changes; due, missed and next slots; the missed-slot policy."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.language.workflow import TriggerConfig
from millrace_trigger.domain.firings import Candidate, Outcome
from millrace_trigger.domain.schedule import (
    CronSchedule,
    IntervalSchedule,
    plan_slots,
    schedule_firings,
    schedule_key,
    slot_schedule,
)

pytestmark = pytest.mark.unit

BERLIN = "Europe/Berlin"
GRACE = timedelta(seconds=60)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local_times(schedule: CronSchedule, after: datetime, until: datetime) -> list[str]:
    return [schedule.local(s).isoformat() for s in schedule.slots(after, until)]


def test_slots_follow_the_wall_clock_of_the_time_zone():
    daily = CronSchedule("0 9 * * MON-FRI", "America/New_York")
    assert local_times(daily, utc(2026, 1, 2), utc(2026, 1, 6)) == [
        "2026-01-02T09:00:00-05:00",
        "2026-01-05T09:00:00-05:00",
    ]


def test_a_wall_time_skipped_by_the_spring_change_fires_an_hour_later():
    nightly = CronSchedule("30 2 * * *", BERLIN)
    assert local_times(nightly, utc(2026, 3, 28), utc(2026, 3, 30, 12)) == [
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:30:00+02:00",
        "2026-03-30T02:30:00+02:00",
    ]


def test_a_wall_time_repeated_by_the_autumn_change_fires_once():
    nightly = CronSchedule("30 2 * * *", BERLIN)
    assert local_times(nightly, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_an_every_hour_expression_keeps_its_rhythm_through_the_repeated_hour():
    quarter = CronSchedule("*/30 * * * *", BERLIN)
    assert local_times(quarter, utc(2026, 10, 24, 23, 15), utc(2026, 10, 25, 2, 15)) == [
        "2026-10-25T01:30:00+02:00",
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


def test_wall_times_that_land_on_one_instant_are_one_slot():
    half_hours = CronSchedule("0,30 1-3 * * *", BERLIN)
    assert local_times(half_hours, utc(2026, 3, 28, 23), utc(2026, 3, 29, 3)) == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]


def test_an_expression_that_never_matches_has_no_next_slot():
    assert CronSchedule("0 0 30 2 *", "UTC").next_slot(utc(2026, 1, 1)) is None


def test_macros_are_understood():
    assert CronSchedule("@daily", "UTC").next_slot(utc(2026, 1, 1, 5)) == utc(2026, 1, 2)
    assert CronSchedule("@hourly", "UTC").next_slot(utc(2026, 1, 1, 5, 1)) == utc(2026, 1, 1, 6)


def test_a_slot_found_within_the_grace_period_is_on_time():
    hourly = CronSchedule("0 * * * *", "UTC")
    plan = plan_slots(hourly, cursor=utc(2026, 1, 1, 9, 30), now=utc(2026, 1, 1, 10, 0, 5), grace=GRACE)
    assert plan.on_time == (utc(2026, 1, 1, 10),)
    assert plan.missed_count == 0
    assert plan.next_slot == utc(2026, 1, 1, 11)


def test_slots_passed_while_down_are_missed_and_the_latest_is_named():
    hourly = CronSchedule("0 * * * *", "UTC")
    plan = plan_slots(hourly, cursor=utc(2026, 1, 1, 9, 30), now=utc(2026, 1, 1, 13, 20), grace=GRACE)
    assert plan.on_time == ()
    assert plan.missed_count == 4
    assert plan.latest_missed == utc(2026, 1, 1, 13)


def test_a_very_long_outage_is_counted_up_to_a_bound_and_still_names_the_latest_slot():
    minutely = CronSchedule("* * * * *", "UTC")
    plan = plan_slots(minutely, cursor=utc(2026, 1, 1), now=utc(2026, 3, 1, 0, 0, 30), grace=GRACE)
    assert plan.missed_count == 10_000
    assert plan.latest_missed == utc(2026, 2, 28, 23, 59)


def scheduled(policy: str = "fire_once") -> Candidate:
    config = TriggerConfig.model_validate(
        {
            "name": "Nightly",
            "kind": "scheduled",
            "cron": "0 * * * *",
            "timezone": BERLIN,
            "missed_slot_policy": policy,
        }
    )
    return Candidate(uuid.uuid4(), 1, "acme", config)


def test_missed_slots_fire_once_on_recovery_by_default():
    workflow = scheduled()
    plan = plan_slots(
        CronSchedule("0 * * * *", BERLIN),
        cursor=utc(2026, 1, 1, 9, 30),
        now=utc(2026, 1, 1, 13, 0, 10),
        grace=GRACE,
    )
    late, on_time = schedule_firings(workflow, plan, now=utc(2026, 1, 1, 13, 0, 10))
    assert late.outcome is Outcome.STARTED
    assert late.data["schedule"]["late"] is True
    assert late.data["schedule"]["missed_slots"] == 3
    assert late.idempotency_key == schedule_key(workflow.workflow_id, utc(2026, 1, 1, 12))
    assert on_time.data["schedule"] == {
        "slot": "2026-01-01T13:00:00+00:00",
        "slot_local": "2026-01-01T14:00:00+01:00",
        "name": "default",
        "cron": "0 * * * *",
        "every": None,
        "unit": None,
        "timezone": BERLIN,
        "late": False,
        "missed_slots": 0,
    }


def test_the_skip_policy_records_missed_slots_without_a_run():
    workflow = scheduled("skip")
    plan = plan_slots(
        CronSchedule("0 * * * *", BERLIN),
        cursor=utc(2026, 1, 1, 9, 30),
        now=utc(2026, 1, 1, 12, 30),
        grace=GRACE,
    )
    [missed] = schedule_firings(workflow, plan, now=utc(2026, 1, 1, 12, 30))
    assert missed.outcome is Outcome.MISSED
    assert "3 slot(s) were missed" in missed.reason


zones = st.sampled_from(
    ["UTC", BERLIN, "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "America/Santiago"]
)
expressions = st.sampled_from(
    ["*/15 * * * *", "0 * * * *", "30 2 * * *", "0 0,12 * * *", "5 1-3 * * SUN", "0 9 1 * *"]
)
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)
)
CLOCK_CHANGES = [
    (BERLIN, utc(2026, 3, 29, 1)),
    (BERLIN, utc(2026, 10, 25, 1)),
    ("America/New_York", utc(2026, 3, 8, 7)),
    ("America/New_York", utc(2026, 11, 1, 6)),
    ("Australia/Lord_Howe", utc(2026, 4, 4, 14, 30)),  # a 30-minute change
    ("Australia/Lord_Howe", utc(2026, 10, 3, 15, 30)),
    ("America/Santiago", utc(2026, 4, 5, 3)),  # changes at midnight local time
    ("America/Santiago", utc(2026, 9, 6, 4)),
]
near_changes = st.sampled_from(CLOCK_CHANGES).flatmap(
    lambda change: st.tuples(
        st.just(change[0]), st.integers(-8 * 60, 2 * 60).map(lambda m: change[1] + timedelta(minutes=m))
    )
)
zoned_starts = st.one_of(st.tuples(zones, instants), near_changes)


@settings(max_examples=150, deadline=None)
@given(expression=expressions, zoned=zoned_starts, hours=st.integers(1, 24 * 8))
def test_slots_are_ordered_unique_and_each_matches_its_wall_clock_time(expression, zoned, hours):
    zone, start = zoned
    schedule = CronSchedule(expression, zone)
    end = start + timedelta(hours=hours)
    slots = schedule.slots(start, end)
    assert slots == sorted(set(slots))
    assert all(start < s <= end for s in slots)
    for slot in slots:
        assert slot.second == 0 and slot.microsecond == 0
    # Walking in two steps finds the same slots as walking in one: a restart never loses or repeats one.
    middle = start + (end - start) / 2
    assert schedule.slots(start, middle) + schedule.slots(middle, end) == slots
    if slots:
        assert schedule.next_slot(start) == slots[0]


@settings(max_examples=60, deadline=None)
@given(expression=expressions, zoned=zoned_starts, hours=st.integers(1, 24 * 3))
def test_every_wall_clock_match_that_exists_once_is_a_slot(expression, zoned, hours):
    zone, start = zoned
    schedule = CronSchedule(expression, zone)
    end = start + timedelta(hours=hours)
    slots = set(schedule.slots(start, end))
    tz = ZoneInfo(zone)
    walls = croniter(expression, start.astimezone(tz).replace(tzinfo=None) - timedelta(hours=4))
    matching = set()
    while (wall := walls.get_next(datetime)) <= end.astimezone(tz).replace(tzinfo=None) + timedelta(hours=4):
        matching.add(wall)
    minute = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while minute <= end:
        naive = minute.astimezone(tz).replace(tzinfo=None)
        unambiguous = (
            naive.replace(tzinfo=tz, fold=0).utcoffset() == naive.replace(tzinfo=tz, fold=1).utcoffset()
        )
        if unambiguous and naive in matching:
            assert minute in slots, (
                f"{minute.astimezone(tz).isoformat()} matches {expression} but is not a slot"
            )
        minute += timedelta(minutes=1)


# -- intervals and named schedules ----------------------------------------------------------------


def test_an_interval_is_aligned_to_the_clock_not_to_when_it_was_activated():
    quarter = IntervalSchedule(15 * 60, BERLIN)
    assert quarter.slots(utc(2026, 1, 1, 9, 7, 31), utc(2026, 1, 1, 10, 0)) == [
        utc(2026, 1, 1, 9, 15),
        utc(2026, 1, 1, 9, 30),
        utc(2026, 1, 1, 9, 45),
        utc(2026, 1, 1, 10, 0),
    ]
    assert quarter.next_slot(utc(2026, 1, 1, 10, 0)) == utc(2026, 1, 1, 10, 15)
    assert quarter.last_slot(utc(2026, 1, 1, 9), utc(2026, 1, 1, 9, 44, 59)) == utc(2026, 1, 1, 9, 30)
    assert quarter.last_slot(utc(2026, 1, 1, 9, 30), utc(2026, 1, 1, 9, 44, 59)) is None


def test_an_interval_keeps_its_rhythm_through_a_clock_change():
    hourly = IntervalSchedule(3600, BERLIN)
    slots = hourly.slots(utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 30))
    assert [s - slots[0] for s in slots] == [timedelta(hours=h) for h in range(3)]
    assert [hourly.local(s).isoformat() for s in slots] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]


@settings(max_examples=200, deadline=None)
@given(
    seconds=st.sampled_from([1, 7, 60, 900, 3600, 7200, 86_400]),
    after=instants,
    steps=st.integers(0, 50),
    part=st.floats(0, 1),
)
def test_interval_slots_are_the_multiples_of_the_interval_in_the_window(seconds, after, steps, part):
    interval = IntervalSchedule(seconds, "UTC")
    until = after + timedelta(seconds=seconds * (steps + part))
    slots = interval.slots(after, until, limit=100_000)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert all((s - epoch) % timedelta(seconds=seconds) == timedelta(0) for s in slots)
    assert all(after < s <= until for s in slots)
    assert all(b - a == timedelta(seconds=seconds) for a, b in itertools.pairwise(slots))
    assert interval.next_slot(after) - after <= timedelta(seconds=seconds)
    assert interval.last_slot(after, until) == (slots[-1] if slots else None)


def named_schedules() -> Candidate:
    config = TriggerConfig.model_validate(
        {
            "name": "t",
            "kind": "scheduled",
            "schedules": [
                {"name": "morning", "cron": "0 9 * * *", "timezone": BERLIN},
                {"name": "poll", "every": 30, "unit": "minutes", "missed_slot_policy": "skip"},
            ],
        }
    )
    return Candidate(uuid.uuid4(), 1, "acme", config)


def test_each_named_schedule_fires_its_own_slots_under_its_own_key():
    workflow = named_schedules()
    morning, poll = workflow.config.schedule_list()
    now = utc(2026, 1, 1, 8, 0, 5)
    firings = [
        firing
        for schedule in (morning, poll)
        for firing in schedule_firings(
            workflow,
            plan_slots(slot_schedule(schedule), cursor=utc(2026, 1, 1, 7, 59), now=now, grace=GRACE),
            now=now,
            schedule=schedule,
        )
    ]
    assert [f.data["schedule"]["name"] for f in firings] == ["morning", "poll"]
    assert firings[1].data["schedule"] | {} == {
        "slot": "2026-01-01T08:00:00+00:00",
        "slot_local": "2026-01-01T08:00:00+00:00",
        "name": "poll",
        "cron": None,
        "every": 30,
        "unit": "minutes",
        "timezone": "UTC",
        "late": False,
        "missed_slots": 0,
    }
    assert firings[0].idempotency_key == f"schedule:{workflow.workflow_id}:morning:2026-01-01T08:00:00+00:00"
    assert firings[0].idempotency_key != firings[1].idempotency_key
    assert firings[0].run_id != firings[1].run_id


def test_an_interval_schedule_follows_its_own_missed_slot_policy():
    workflow = named_schedules()
    poll = workflow.config.schedule_list()[1]
    now = utc(2026, 1, 1, 12, 10)
    plan = plan_slots(slot_schedule(poll), cursor=utc(2026, 1, 1, 9, 10), now=now, grace=GRACE)
    [missed] = schedule_firings(workflow, plan, now=now, schedule=poll)
    assert missed.outcome is Outcome.MISSED
    assert missed.data["schedule"]["missed_slots"] == 6
    assert missed.data["schedule"]["slot"] == "2026-01-01T12:00:00+00:00"


def test_a_trigger_with_one_top_level_cron_reads_as_one_schedule_named_default():
    [legacy] = scheduled().config.schedule_list()
    assert (legacy.name, legacy.cron, legacy.timezone) == ("default", "0 * * * *", BERLIN)
    assert schedule_key("w", utc(2026, 1, 1)) == "schedule:w:2026-01-01T00:00:00+00:00"
