"""What a run of appended events changes in the query tables (``runs``, ``node_executions``,
``timers``, ``workflow_starts``), folded into the fewest rows: the shell writes a whole batch of
decisions with a handful of statements instead of several per event.

The fold keeps the order of the events: a change to a row written earlier in the same batch is
applied to that pending row here, and a change to a row that existed before the batch becomes a
statement that runs before the pending rows are written. Rows from before the batch are always
older than any event in it, so running those statements first gives the same tables as applying
every event one by one.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from millrace_common.contracts.messages.run_events import (
    ApprovalRequested,
    ChildRunRequested,
    NodeFailed,
    NodeRetryScheduled,
    NodeScheduled,
    NodeSkipped,
    NodeSucceeded,
    RunCancelled,
    RunCompleted,
    RunContinued,
    RunEvent,
    RunFailed,
    RunPaused,
    RunRetried,
    RunStarted,
    RunThrottled,
    RunTimedOut,
    TimerFired,
    TimerScheduled,
)

from millrace_orchestrator.domain.state import ATTEMPT_GUARDS

Row = dict[str, Any]


def start_minute(at: datetime) -> datetime:
    """The minute a run's start is counted in."""
    return at.replace(second=0, microsecond=0)


IN_FLIGHT = ("scheduled", "retrying", "waiting")
NodeKey = tuple[UUID, str]


@dataclass(frozen=True)
class NodeTimeoutTimers:
    """The timeout timer of one attempt of a node, which settles when the attempt does."""

    run_id: UUID
    node_id: str
    attempt: int


@dataclass
class ProjectionWrites:
    """The rows to insert and the changes to rows that existed before the batch, in the order the
    shell applies them: deletes and updates of older rows, then inserts and upserts."""

    new_runs: dict[UUID, Row] = field(default_factory=dict)
    run_updates: dict[UUID, Row] = field(default_factory=dict)
    # Runs started (not throttled), by tenant, workflow and the minute they started in: the counts
    # a workflow's ``max_executions_per_hour`` is judged against.
    starts: dict[tuple[str, UUID, datetime], int] = field(default_factory=dict)
    node_rows: dict[NodeKey, Row] = field(default_factory=dict)
    # (run, nodes, status) in event order; nodes None means every node of the run still in flight
    node_status_updates: list[tuple[UUID, tuple[str, ...] | None, str]] = field(default_factory=list)
    new_timers: dict[UUID, Row] = field(default_factory=dict)
    fired_timers: set[UUID] = field(default_factory=set)
    settled_attempt_timers: set[NodeTimeoutTimers] = field(default_factory=set)
    finished_run_timers: set[UUID] = field(default_factory=set)
    # A paused run's task for the person who decides, and the runs whose task a decision closed.
    new_tasks: dict[UUID, Row] = field(default_factory=dict)
    closed_tasks: dict[UUID, Row] = field(default_factory=dict)

    def update_run(self, run_id: UUID, **values: object) -> None:
        target = self.new_runs.get(run_id)
        if target is None:
            target = self.run_updates.setdefault(run_id, {})
        target.update(values)

    def write_node(
        self,
        event: NodeScheduled | NodeSucceeded | NodeFailed | NodeSkipped | NodeRetryScheduled,
        **values: object,
    ) -> None:
        row = self.node_rows.setdefault((event.run_id, event.node_id), {"node_type": event.node_type})
        row["node_type"] = event.node_type
        row.update(values)

    def set_node_status(self, run_id: UUID, node_ids: tuple[str, ...], status: str) -> None:
        for node_id in node_ids:
            pending = self.node_rows.get((run_id, node_id))
            if pending is not None:
                pending["status"] = status
        self.node_status_updates.append((run_id, node_ids, status))

    def older_node_changes(self) -> tuple[dict[NodeKey, str], dict[UUID, frozenset[str]]]:
        """The status changes of node rows from before the batch, folded so that no row is changed
        twice (the shell writes everything in one statement): the final status of each row named
        explicitly, and per run that ended early the nodes its "abandon what is in flight" must
        leave alone (named explicitly, or written by the batch, which already carries the status)."""
        explicit: dict[NodeKey, str] = {}
        abandoned: set[UUID] = set()
        for run_id, node_ids, status in self.node_status_updates:
            if node_ids is None:
                for key, current in explicit.items():
                    if key[0] == run_id and current in IN_FLIGHT:
                        explicit[key] = status
                abandoned.add(run_id)
            else:
                explicit.update({(run_id, node_id): status for node_id in node_ids})
        explicit = {key: status for key, status in explicit.items() if key not in self.node_rows}
        untouched = {
            run_id: frozenset(node for run, node in [*explicit, *self.node_rows] if run == run_id)
            for run_id in abandoned
        }
        return explicit, untouched

    def cancel_attempt_timer(self, run_id: UUID, node_id: str, attempt: int) -> None:
        for timer_id, row in list(self.new_timers.items()):
            if (row["run_id"], row["node_id"], row["attempt"]) == (run_id, node_id, attempt) and row[
                "purpose"
            ] in ATTEMPT_GUARDS:
                del self.new_timers[timer_id]
        self.settled_attempt_timers.add(NodeTimeoutTimers(run_id, node_id, attempt))

    def cancel_run_timers(self, run_id: UUID) -> None:
        for timer_id, row in list(self.new_timers.items()):
            if row["run_id"] == run_id:
                del self.new_timers[timer_id]
        self.finished_run_timers.add(run_id)

    def abandon_nodes(self, run_id: UUID) -> None:
        """A run that ended early leaves no node looking as if it were still on its way."""
        for (node_run, _), row in self.node_rows.items():
            if node_run == run_id and row.get("status") in IN_FLIGHT:
                row["status"] = "abandoned"
        self.node_status_updates.append((run_id, None, "abandoned"))

    def fire_timer(self, timer_id: UUID) -> None:
        if self.new_timers.pop(timer_id, None) is None:
            self.fired_timers.add(timer_id)


def project(events: Iterable[RunEvent]) -> ProjectionWrites:
    """The query-table changes of ``events`` (in log order, possibly of many runs)."""
    writes = ProjectionWrites()
    for event in events:
        _apply(writes, event)
    return writes


def _apply(writes: ProjectionWrites, event: RunEvent) -> None:
    match event:
        case RunStarted() | RunThrottled():
            throttled = isinstance(event, RunThrottled)
            if not throttled:
                minute = (event.tenant_id, event.workflow_id, start_minute(event.occurred_at))
                writes.starts[minute] = writes.starts.get(minute, 0) + 1
            writes.new_runs[event.run_id] = {
                "run_id": event.run_id,
                "tenant_id": event.tenant_id,
                "workflow_id": event.workflow_id,
                "workflow_version": event.workflow_version,
                "status": "throttled" if throttled else "running",
                "trigger": event.trigger.model_dump(mode="json"),
                "error": event.reason if throttled else None,
                # From the trigger's receipt, so the duration is what the caller waited.
                "started_at": (event.received_at if isinstance(event, RunStarted) else None)
                or event.occurred_at,
                "finished_at": event.occurred_at if throttled else None,
                "final_output": None,
                "last_seq": event.seq,
                "parent_run_id": event.parent.run_id if not throttled and event.parent else None,
                "parent_node_id": event.parent.node_id if not throttled and event.parent else None,
            }
            return
        # An agent's tool call (``agent#t2.0``) waiting on a run or an approval has no row of its own:
        # its agent node stays scheduled, and the run's log shows the call.
        case ChildRunRequested() if event.mode == "wait" and "#" not in event.node_id:
            writes.set_node_status(event.run_id, (event.node_id,), "waiting")
        case NodeScheduled():
            writes.write_node(
                event,
                status="scheduled",
                attempts=event.attempt,
                input=event.input,
                scheduled_at=event.occurred_at,
            )
        case ApprovalRequested() if "#" not in event.node_id:
            writes.set_node_status(event.run_id, (event.node_id,), "waiting")
        case NodeRetryScheduled():
            writes.write_node(
                event, status="retrying", attempts=event.attempt, error=event.error.model_dump(mode="json")
            )
            writes.cancel_attempt_timer(event.run_id, event.node_id, event.attempt)
        case TimerScheduled():
            writes.new_timers[event.timer_id] = {
                "timer_id": event.timer_id,
                "run_id": event.run_id,
                "tenant_id": event.tenant_id,
                "purpose": event.purpose,
                "node_id": event.node_id,
                "attempt": event.attempt,
                "fire_at": event.fire_at,
            }
        case TimerFired():
            writes.fire_timer(event.timer_id)
        case NodeSucceeded():
            writes.cancel_attempt_timer(event.run_id, event.node_id, event.attempt)
            writes.write_node(
                event,
                status="succeeded",
                attempts=event.attempt,
                output=event.output,
                finished_at=event.occurred_at,
                duration_ms=event.duration_ms,
            )
        case NodeFailed():
            writes.cancel_attempt_timer(event.run_id, event.node_id, event.attempt)
            writes.write_node(
                event,
                status="failed",
                attempts=event.attempt,
                error=event.error.model_dump(mode="json"),
                finished_at=event.occurred_at,
                duration_ms=event.duration_ms,
            )
        case NodeSkipped():
            writes.write_node(event, status="skipped", attempts=0, finished_at=event.occurred_at)
        case RunCompleted() | RunTimedOut() | RunFailed() | RunCancelled():
            status = _FINISHED_STATUS[type(event)]
            error = None if isinstance(event, RunCompleted) else event.reason
            values: Row = {"status": status, "finished_at": event.occurred_at}
            if error is not None:
                values["error"] = error
            if isinstance(event, RunCompleted):
                values["final_output"] = event.final_output
            writes.update_run(event.run_id, last_seq=event.seq, **values)
            writes.cancel_run_timers(event.run_id)
            if not isinstance(event, RunCompleted):
                writes.abandon_nodes(event.run_id)
            return
        case RunPaused():
            writes.update_run(event.run_id, last_seq=event.seq, status="paused", error=event.reason)
            task_id = paused_task_id(event.run_id, event.node_id)
            writes.new_tasks[task_id] = {
                "id": task_id,
                "tenant_id": event.tenant_id,
                "assignee_user": event.notify.get("user"),
                "assignee_role": None if event.notify.get("user") else event.notify.get("role", "admin"),
                "title": f"A run is paused: node {event.node_id!r} failed",
                "message": f"{event.reason}. Retry the node or skip it from the run view, or with"
                f' POST /api/v1/runs/{event.run_id}/continue {{"action": "retry"}} or {{"action": "skip"}}.',
                "run_id": event.run_id,
                "node_id": event.node_id,
                "status": "open",
                "created_at": event.occurred_at,
                "done_at": None,
                "done_by": None,
            }
            return
        case RunContinued():
            if event.action == "retry":
                writes.set_node_status(event.run_id, event.node_ids, "pending")
            writes.update_run(event.run_id, last_seq=event.seq, status="running", error=None)
            for node_id in event.node_ids:
                task_id = paused_task_id(event.run_id, node_id)
                closed = {"status": "done", "done_at": event.occurred_at, "done_by": event.requested_by}
                if task_id in writes.new_tasks:
                    writes.new_tasks[task_id].update(closed)
                else:
                    writes.closed_tasks[task_id] = closed
            return
        case RunRetried():
            writes.set_node_status(event.run_id, event.node_ids, "pending")
            writes.update_run(
                event.run_id, last_seq=event.seq, status="running", finished_at=None, error=None
            )
            return
    writes.update_run(event.run_id, last_seq=event.seq)


def paused_task_id(run_id: UUID, node_id: str) -> UUID:
    """The task of a run paused on a node: one per run and node, so a redelivered event writes it once."""
    return uuid5(run_id, f"paused:{node_id}")


_FINISHED_STATUS = {
    RunCompleted: "completed",
    RunTimedOut: "timed_out",
    RunFailed: "failed",
    RunCancelled: "cancelled",
}
