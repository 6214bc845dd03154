"""How busy a workflow is, and whether a new run of it may start (its throttling limits)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from millrace_common.contracts.messages.run_events import (
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunRetried,
    RunStarted,
    RunTimedOut,
)

from millrace_orchestrator.domain.state import RunState


@dataclass(frozen=True)
class WorkflowLoad:
    """How busy the run's workflow is when a StartRun arrives (read by the shell, judged here)."""

    started_last_hour: int = 0
    running: int = 0

    def after(self, events: Sequence[RunEvent]) -> WorkflowLoad:
        """The load once ``events`` (of one run of the workflow) are in the log: the shell decides a
        batch of messages against one reading of the load, carried forward by this."""
        started, running = self.started_last_hour, self.running
        for event in events:
            started += isinstance(event, RunStarted)
            running += running_change(event)
        return WorkflowLoad(started, running)


def running_change(event: RunEvent) -> int:
    """How ``event`` changes the number of its workflow's running runs."""
    if isinstance(event, (RunStarted, RunRetried)):
        return 1
    if isinstance(event, (RunCompleted, RunFailed, RunCancelled, RunTimedOut)):
        return -1
    return 0


@dataclass(frozen=True)
class WorkflowStarts:
    """A batch's new runs of one workflow: how many started, the most its running runs had grown
    by at any start (the runs the batch ended before it counted off, as ``WorkflowLoad.after``
    counts), and the strictest limits the runs' definitions set. A batch decided on an unknown load
    decides as it would on the true one exactly when ``started + starts <= per_hour`` and
    ``running + peak <= concurrent``."""

    starts: int
    peak: int
    per_hour: int
    concurrent: int | None


def starts_by_workflow(
    events: Sequence[RunEvent], states: Mapping[UUID, RunState]
) -> dict[tuple[str, UUID], WorkflowStarts]:
    """Per (tenant, workflow) that ``events`` (a batch's, in order; ``states`` the runs' states
    after it) start runs of."""
    grown: dict[tuple[str, UUID], int] = {}
    starts: dict[tuple[str, UUID], WorkflowStarts] = {}
    for event in events:
        state = states[event.run_id]
        if state.workflow_id is None:
            continue
        key = (event.tenant_id, state.workflow_id)
        grown[key] = grown.get(key, 0) + running_change(event)
        if isinstance(event, RunStarted):
            settings = state.definition.settings
            seen = starts.get(
                key, WorkflowStarts(0, 0, settings.max_executions_per_hour, settings.max_concurrent_runs)
            )
            limits = [c for c in (seen.concurrent, settings.max_concurrent_runs) if c is not None]
            starts[key] = WorkflowStarts(
                starts=seen.starts + 1,
                peak=max(seen.peak, grown[key]),
                per_hour=min(seen.per_hour, settings.max_executions_per_hour),
                concurrent=min(limits) if limits else None,
            )
    return starts


def throttle_reason(state: RunState, load: WorkflowLoad) -> str | None:
    """Why a new run of this workflow may not start now, if it may not."""
    settings = state.definition.settings
    if load.started_last_hour >= settings.max_executions_per_hour:
        return f"max_executions_per_hour reached: {load.started_last_hour} runs started in the last hour"
    if settings.max_concurrent_runs is not None and load.running >= settings.max_concurrent_runs:
        return f"max_concurrent_runs reached: {load.running} runs are running"
    return None
