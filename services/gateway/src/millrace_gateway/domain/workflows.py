"""Workflow rules: which definitions are accepted, what an archived workflow may not do, how a copy is
named, what the API says about each schedule. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from millrace_common.contracts.messages.run_events import RUN_ENDED_STATUSES, RunStatus
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.language.workflow_validation import stored_size_problem, validate_definition
from millrace_common.platform.refusals import FieldProblem
from pydantic import JsonValue

from millrace_gateway.domain.refusals import Archived, InvalidDefinition

Status = Literal["draft", "active", "paused", "archived"]
FINISHED_RUN_STATUSES = tuple(sorted(s.value for s in RUN_ENDED_STATUSES if s is not RunStatus.THROTTLED))
"""Runs in these states count toward a workflow's success rate (a throttled run never ran)."""
NAME_LIMIT = 200
DESCRIPTION_LIMIT = 2000
COPY_SUFFIX = " (copy)"


def checked_definition(definition: dict[str, JsonValue]) -> WorkflowDefinition:
    """The definition, validated; every problem at once when it is not valid."""
    report = validate_definition(definition)
    if report.definition is None:
        raise InvalidDefinition(
            f"the workflow definition has {len(report.problems)} problem(s)",
            *(FieldProblem("/definition" + p.pointer, p.message) for p in report.problems),
        )
    return report.definition


def refuse_if_archived(status: str, action: str) -> None:
    """``action`` completes "an archived workflow cannot ...": ``be changed``, ``run``."""
    if status == "archived":
        raise Archived(f"an archived workflow cannot {action}")


def copy_name(name: str) -> str:
    return name[: NAME_LIMIT - len(COPY_SUFFIX)] + COPY_SUFFIX


def refuse_oversized_copy(definition: WorkflowDefinition) -> None:
    # Definitions stored before the size limit was enforced on saving can be over it.
    oversized = stored_size_problem(definition)
    if oversized is not None:
        raise InvalidDefinition(
            f"the workflow's newest version cannot be copied: {oversized.message}",
            FieldProblem("/path/workflow_id", oversized.message),
        )


@dataclass(frozen=True)
class ScheduleCursor:
    """What the trigger service recorded of one schedule (by name)."""

    activated_at: datetime
    last_slot_at: datetime | None
    next_slot_at: datetime | None
    run_count: int


@dataclass(frozen=True)
class ScheduleView:
    """One of a workflow's schedules as the API shows it."""

    name: str
    kind: Literal["cron", "interval"]
    cron: str | None
    every: int | None
    unit: str | None
    timezone: str
    missed_slot_policy: str
    last_slot_at: datetime | None
    next_slot_at: datetime | None
    run_count: int


def schedule_views(
    definition: WorkflowDefinition, cursors: Mapping[str, ScheduleCursor], *, active: bool
) -> list[ScheduleView]:
    """The schedules of ``definition``'s trigger with their last slot and count of runs (kept by name
    across versions) and, while the workflow is active, their next slot."""
    views = []
    for schedule in definition.trigger.data.schedule_list():
        cursor = cursors.get(schedule.name)
        views.append(
            ScheduleView(
                name=schedule.name,
                kind=schedule.kind,
                cron=schedule.cron,
                every=schedule.every,
                unit=schedule.unit if schedule.every is not None else None,
                timezone=schedule.timezone,
                missed_slot_policy=schedule.missed_slot_policy,
                last_slot_at=cursor.last_slot_at if cursor else None,
                next_slot_at=cursor.next_slot_at if cursor and active else None,
                run_count=cursor.run_count if cursor else 0,
            )
        )
    return views
