"""Schedules: which instants are slots, which slots are due, and what a missed slot becomes. Pure:
the caller passes the current time. A trigger has one or more named schedules, each a cron expression
in an IANA time zone (:class:`CronSchedule`) or an interval (:class:`IntervalSchedule`).

An interval's slots are the multiples of it since the Unix epoch (1970-01-01T00:00:00Z), so every
15 minutes is :00, :15, :30 and :45 of every hour, whatever the zone or clock changes; its time zone
only says how ``slot_local`` is written.

A cron expression describes wall-clock times in the schedule's zone. Each matching wall-clock time is
one slot, at the instant RFC 5545 gives it:

- a time that happens twice when clocks go back (02:30 on the autumn change in Europe) is a slot
  the first time only, unless the expression fires every hour (hour field ``*``), whose slots repeat
  in the repeated hour too (so ``*/15 * * * *`` keeps its 15 minutes);
- a time that does not happen when clocks go forward (02:30 on the spring change) is a slot at the
  same time with the offset from before the change: 03:30 summer time;
- two wall-clock times that land on the same instant are one slot.

The slot instant (in UTC) and the schedule's name name the slot, so they are the idempotency key of its
run (a trigger written with one top-level ``cron`` keeps the key it had before schedules had names).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, croniter
from millrace_common.language.workflow import LEGACY_SCHEDULE_NAME, Schedule

from millrace_trigger.domain.firings import Candidate, Firing, Outcome, firing
from millrace_trigger.domain.matching import Filtered, conditions_verdict

_HORIZON = timedelta(hours=3)
_LOOKBACKS = (
    timedelta(hours=2),
    timedelta(days=2),
    timedelta(days=40),
    timedelta(days=400),
    timedelta(days=3000),
)
MAX_COUNTED_MISSES = 10_000


@dataclass(frozen=True)
class CronSchedule:
    expression: str
    timezone: str

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _every_hour(self) -> bool:
        expression = self.expression.strip().lower()
        if expression.startswith("@"):
            return expression == "@hourly"
        return expression.split()[1] == "*"

    def slots(self, after: datetime, until: datetime, *, limit: int = MAX_COUNTED_MISSES) -> list[datetime]:
        """The slots in ``(after, until]``, earliest first, at most ``limit`` of them."""
        found: list[datetime] = []
        for instant in self._instants_after(after):
            if instant > until or len(found) >= limit:
                break
            found.append(instant)
        return found

    def next_slot(self, after: datetime) -> datetime | None:
        """The first slot after ``after``; None if the expression never matches again."""
        return next(self._instants_after(after), None)

    def last_slot(self, after: datetime, until: datetime) -> datetime | None:
        """The latest slot in ``(after, until]``, found without walking every slot since ``after``."""
        for lookback in _LOOKBACKS:
            start = max(after, until - lookback)
            window = self.slots(start, until, limit=100_000)
            if window:
                return window[-1]
            if start == after:
                return None
        return None

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)

    def _instants_after(self, after: datetime) -> Iterator[datetime]:
        after = after.astimezone(UTC)
        start_wall = after.astimezone(self.zone).replace(tzinfo=None)
        if self._near_change(after):
            start_wall -= _HORIZON
        last: datetime | None = None
        for instant in self._instants(start_wall):
            if instant > after and (last is None or instant > last):
                last = instant
                yield instant

    def _instants(self, start_wall: datetime) -> Iterator[datetime]:
        """Slot instants for wall-clock times after ``start_wall``, in order (see the module's rules)."""
        walls = croniter(self.expression, start_wall)
        pending: list[datetime] = []
        while True:
            try:
                wall = walls.get_next(datetime)
            except CroniterBadDateError:
                break
            first = wall.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
            heapq.heappush(pending, first)
            if self._every_hour:
                second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
                if second != first and second.astimezone(self.zone).replace(tzinfo=None) == wall:
                    heapq.heappush(pending, second)
            # Around a clock change a later wall time can map to an earlier instant, so a slot is
            # released only once no later wall time can come before it.
            settled = first - _HORIZON if self._near_change(first) else first
            while pending and pending[0] <= settled:
                yield heapq.heappop(pending)
        while pending:
            yield heapq.heappop(pending)

    def _near_change(self, instant: datetime) -> bool:
        before = (instant - _HORIZON).astimezone(self.zone).utcoffset()
        after = (instant + _HORIZON).astimezone(self.zone).utcoffset()
        return before != after


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class IntervalSchedule:
    """Every ``seconds`` seconds, aligned to the Unix epoch."""

    seconds: int
    timezone: str

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _step(self) -> timedelta:
        return timedelta(seconds=self.seconds)

    def slots(self, after: datetime, until: datetime, *, limit: int = MAX_COUNTED_MISSES) -> list[datetime]:
        """The slots in ``(after, until]``, earliest first, at most ``limit`` of them."""
        found: list[datetime] = []
        slot = self.next_slot(after)
        while slot <= until and len(found) < limit:
            found.append(slot)
            slot += self._step
        return found

    def next_slot(self, after: datetime) -> datetime:
        """The first slot after ``after``."""
        return _EPOCH + ((after - _EPOCH) // self._step + 1) * self._step

    def last_slot(self, after: datetime, until: datetime) -> datetime | None:
        """The latest slot in ``(after, until]``."""
        slot = _EPOCH + ((until - _EPOCH) // self._step) * self._step
        return slot if slot > after else None

    def local(self, instant: datetime) -> datetime:
        return instant.astimezone(self.zone)


SlotSchedule = CronSchedule | IntervalSchedule


def slot_schedule(schedule: Schedule) -> SlotSchedule:
    """The slots of one of a trigger's schedules."""
    if schedule.cron is not None:
        return CronSchedule(schedule.cron, schedule.timezone)
    return IntervalSchedule(schedule.interval_seconds, schedule.timezone)


@dataclass(frozen=True)
class SlotPlan:
    """What to do with the slots since the cursor: fire the on-time ones, and the missed ones
    (older than the grace period) according to the policy."""

    on_time: tuple[datetime, ...]
    missed_count: int
    latest_missed: datetime | None
    next_slot: datetime | None


def plan_slots(schedule: SlotSchedule, *, cursor: datetime, now: datetime, grace: timedelta) -> SlotPlan:
    """Slots in ``(cursor, now]``: the ones within ``grace`` of now are on time, the rest were missed
    (the service was down or late); ``next_slot`` is the first one after now."""
    late_bound = max(cursor, now - grace)
    missed = schedule.slots(cursor, late_bound) if late_bound > cursor else []
    latest_missed = None
    if missed:
        latest_missed = (
            missed[-1] if len(missed) < MAX_COUNTED_MISSES else schedule.last_slot(cursor, late_bound)
        )
    return SlotPlan(
        on_time=tuple(schedule.slots(late_bound, now)),
        missed_count=len(missed),
        latest_missed=latest_missed,
        next_slot=schedule.next_slot(now),
    )


def schedule_key(workflow_id: object, slot: datetime, name: str = LEGACY_SCHEDULE_NAME) -> str:
    """The slot's idempotency key; the one schedule of a trigger with a top-level ``cron`` keeps the
    key it had before schedules were named, so an upgrade never fires a slot twice."""
    instant = slot.astimezone(UTC).isoformat()
    if name == LEGACY_SCHEDULE_NAME:
        return f"schedule:{workflow_id}:{instant}"
    return f"schedule:{workflow_id}:{name}:{instant}"


def schedule_firings(
    candidate: Candidate, plan: SlotPlan, *, now: datetime, schedule: Schedule | None = None
) -> list[Firing]:
    """One firing per on-time slot of ``schedule`` (by default the trigger's first); missed slots
    become one late run (``fire_once``, the default) or one ``missed`` record (``skip``), for the
    latest of them."""
    if schedule is None:
        schedule = candidate.config.schedule_list()[0]
    slots = slot_schedule(schedule)
    firings = []
    if plan.latest_missed is not None:
        count = f"{plan.missed_count}+" if plan.missed_count >= MAX_COUNTED_MISSES else str(plan.missed_count)
        data = _slot_data(schedule, slots, plan.latest_missed, late=True, missed=plan.missed_count)
        if schedule.missed_slot_policy == "skip":
            reason = f"{count} slot(s) were missed and the missed-slot policy is skip"
            firings.append(
                _slot_firing(candidate, schedule, plan.latest_missed, data, Outcome.MISSED, reason)
            )
        else:
            firings.extend(_checked(candidate, schedule, plan.latest_missed, data, now))
    for slot in plan.on_time:
        data = _slot_data(schedule, slots, slot, late=False, missed=0)
        firings.extend(_checked(candidate, schedule, slot, data, now))
    return firings


def _checked(
    candidate: Candidate, schedule: Schedule, slot: datetime, data: dict, now: datetime
) -> list[Firing]:
    verdict = conditions_verdict(candidate, data, now)
    if isinstance(verdict, Filtered):
        return []
    outcome, reason = verdict
    return [_slot_firing(candidate, schedule, slot, data, outcome, reason)]


def _slot_firing(
    candidate: Candidate, schedule: Schedule, slot: datetime, data: dict, outcome: Outcome, reason: str | None
) -> Firing:
    return firing(
        candidate,
        key=schedule_key(candidate.workflow_id, slot, schedule.name),
        source="schedule",
        source_event_id=None,
        data=data,
        outcome=outcome,
        reason=reason,
    )


def _slot_data(schedule: Schedule, slots: SlotSchedule, slot: datetime, *, late: bool, missed: int) -> dict:
    # Every slot has every field (null where it does not apply), so a template reads any of them.
    interval = schedule.every is not None
    described = {
        "name": schedule.name,
        "cron": schedule.cron,
        "every": schedule.every,
        "unit": schedule.unit if interval else None,
    }
    return {
        "schedule": {
            "slot": slot.astimezone(UTC).isoformat(),
            "slot_local": slots.local(slot).isoformat(),
            **described,
            "timezone": schedule.timezone,
            "late": late,
            "missed_slots": missed,
        },
    }
