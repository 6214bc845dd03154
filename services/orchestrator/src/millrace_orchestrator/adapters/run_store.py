"""The run log in PostgreSQL: load a run's events, append new ones under the ``(run_id, seq)`` guard,
and keep the ``runs`` and ``node_executions`` projections in step within the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_common.messages.envelope import utc_now
from millrace_common.messages.run_events import (
    RUN_EVENT,
    NodeFailed,
    NodeRetryScheduled,
    NodeScheduled,
    NodeSkipped,
    NodeSucceeded,
    RunCompleted,
    RunEvent,
    RunCancelled,
    RunFailed,
    RunRetried,
    RunStarted,
    RunThrottled,
    RunTimedOut,
    ApprovalRequested,
    TimerFired,
    TimerScheduled,
)
from millrace_common.tables import (
    node_executions,
    processed_messages,
    run_events,
    runs,
    timers,
    workflow_versions,
)
from millrace_common.workflow import WorkflowDefinition


class UnknownWorkflowVersion(LookupError):
    pass


async def claim_message(connection: AsyncConnection, consumer: str, message_id: UUID) -> bool:
    """Record that this consumer handles the message; False when it was handled before."""
    result = await connection.execute(
        pg_insert(processed_messages)
        .values(consumer=consumer, message_id=message_id, processed_at=utc_now())
        .on_conflict_do_nothing()
        .returning(processed_messages.c.message_id)
    )
    return result.first() is not None


async def load_events(connection: AsyncConnection, run_id: UUID, *, after_seq: int = 0) -> list[RunEvent]:
    """The run's events after ``after_seq`` (all of them by default), in order."""
    rows = await connection.execute(
        select(run_events.c.payload)
        .where(run_events.c.run_id == run_id, run_events.c.seq > after_seq)
        .order_by(run_events.c.seq)
    )
    return [RUN_EVENT.validate_python(row.payload) for row in rows]


async def workflow_load(connection: AsyncConnection, tenant_id: str, workflow_id: UUID, now: datetime) -> tuple[int, int]:
    """Runs of a workflow started in the last hour, and runs of it running now."""
    row = (
        await connection.execute(
            select(
                func.count().filter(runs.c.started_at > now - timedelta(hours=1), runs.c.status != "throttled"),
                func.count().filter(runs.c.status == "running"),
            ).where(runs.c.tenant_id == tenant_id, runs.c.workflow_id == workflow_id)
        )
    ).one()
    return int(row[0]), int(row[1])


async def run_definition_ref(connection: AsyncConnection, run_id: UUID) -> tuple[UUID, int] | None:
    row = (
        await connection.execute(
            select(runs.c.workflow_id, runs.c.workflow_version).where(runs.c.run_id == run_id)
        )
    ).first()
    return (row.workflow_id, row.workflow_version) if row else None


class DefinitionCache:
    """Workflow versions are immutable, so a loaded one is kept for the process's life (bounded)."""

    def __init__(self, capacity: int = 2048) -> None:
        self._entries: dict[tuple[UUID, int], WorkflowDefinition] = {}
        self._capacity = capacity

    async def get(self, connection: AsyncConnection, workflow_id: UUID, version: int) -> WorkflowDefinition:
        key = (workflow_id, version)
        if key not in self._entries:
            row = (
                await connection.execute(
                    select(workflow_versions.c.definition).where(
                        workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.version == version
                    )
                )
            ).first()
            if row is None:
                raise UnknownWorkflowVersion(f"workflow {workflow_id} has no version {version}")
            if len(self._entries) >= self._capacity:
                self._entries.pop(next(iter(self._entries)))
            self._entries[key] = WorkflowDefinition.model_validate(row.definition)
        return self._entries[key]


async def append(connection: AsyncConnection, events: Sequence[RunEvent]) -> None:
    """Append events (their ``seq`` already assigned); a concurrent writer makes the insert fail."""
    if not events:
        return
    now = utc_now()
    await connection.execute(
        insert(run_events),
        [
            {
                "run_id": e.run_id,
                "seq": e.seq,
                "event_id": e.message_id,
                "type": e.type,
                "payload": e.model_dump(mode="json"),
                "recorded_at": now,
            }
            for e in events
        ],
    )
    for event in events:
        await _project(connection, event)


async def _project(connection: AsyncConnection, event: RunEvent) -> None:
    match event:
        case RunStarted():
            await connection.execute(
                insert(runs).values(
                    run_id=event.run_id,
                    tenant_id=event.tenant_id,
                    workflow_id=event.workflow_id,
                    workflow_version=event.workflow_version,
                    status="running",
                    trigger=event.trigger.model_dump(mode="json"),
                    started_at=event.occurred_at,
                    last_seq=event.seq,
                )
            )
            return
        case NodeScheduled():
            await _upsert_node(
                connection,
                event,
                status="scheduled",
                attempts=event.attempt,
                input=event.input,
                scheduled_at=event.occurred_at,
            )
        case RunThrottled():
            await connection.execute(
                insert(runs).values(
                    run_id=event.run_id,
                    tenant_id=event.tenant_id,
                    workflow_id=event.workflow_id,
                    workflow_version=event.workflow_version,
                    status="throttled",
                    trigger=event.trigger.model_dump(mode="json"),
                    error=event.reason,
                    started_at=event.occurred_at,
                    finished_at=event.occurred_at,
                    last_seq=event.seq,
                )
            )
            return
        case ApprovalRequested():
            await connection.execute(
                update(node_executions)
                .where(node_executions.c.run_id == event.run_id, node_executions.c.node_id == event.node_id)
                .values(status="waiting")
            )
        case NodeRetryScheduled():
            await _upsert_node(
                connection,
                event,
                status="retrying",
                attempts=event.attempt,
                error=event.error.model_dump(mode="json"),
            )
            await _cancel_node_timers(connection, event)
        case TimerScheduled():
            await connection.execute(
                insert(timers).values(
                    timer_id=event.timer_id,
                    run_id=event.run_id,
                    tenant_id=event.tenant_id,
                    purpose=event.purpose,
                    node_id=event.node_id,
                    attempt=event.attempt,
                    fire_at=event.fire_at,
                )
            )
        case TimerFired():
            await connection.execute(delete(timers).where(timers.c.timer_id == event.timer_id))
        case NodeSucceeded():
            await _cancel_node_timers(connection, event)
            await _upsert_node(
                connection,
                event,
                status="succeeded",
                attempts=event.attempt,
                output=event.output,
                finished_at=event.occurred_at,
                duration_ms=event.duration_ms,
            )
        case NodeFailed():
            await _cancel_node_timers(connection, event)
            await _upsert_node(
                connection,
                event,
                status="failed",
                attempts=event.attempt,
                error=event.error.model_dump(mode="json"),
                finished_at=event.occurred_at,
                duration_ms=event.duration_ms,
            )
        case NodeSkipped():
            await _upsert_node(connection, event, status="skipped", attempts=0, finished_at=event.occurred_at)
        case RunCompleted():
            await _update_run(connection, event, status="completed", finished_at=event.occurred_at)
            await _cancel_run_timers(connection, event)
            return
        case RunTimedOut():
            await _update_run(connection, event, status="timed_out", finished_at=event.occurred_at, error=event.reason)
            await _cancel_run_timers(connection, event)
            return
        case RunFailed():
            await _update_run(connection, event, status="failed", finished_at=event.occurred_at, error=event.reason)
            await _cancel_run_timers(connection, event)
            return
        case RunCancelled():
            await _update_run(connection, event, status="cancelled", finished_at=event.occurred_at, error=event.reason)
            await _cancel_run_timers(connection, event)
            return
        case RunRetried():
            await connection.execute(
                update(node_executions)
                .where(node_executions.c.run_id == event.run_id, node_executions.c.node_id.in_(event.node_ids))
                .values(status="pending")
            )
            await _update_run(connection, event, status="running", finished_at=None, error=None)
            return
    await _update_run(connection, event)


async def _cancel_node_timers(connection: AsyncConnection, event: NodeSucceeded | NodeFailed | NodeRetryScheduled) -> None:
    """A settled attempt's timeout timer has nothing left to guard."""
    await connection.execute(
        delete(timers).where(
            timers.c.run_id == event.run_id,
            timers.c.node_id == event.node_id,
            timers.c.attempt == event.attempt,
            timers.c.purpose == "node_timeout",
        )
    )


async def _cancel_run_timers(connection: AsyncConnection, event: RunEvent) -> None:
    """A finished run fires no more timers (its FireTimer messages would be no-ops anyway)."""
    await connection.execute(delete(timers).where(timers.c.run_id == event.run_id))


async def _update_run(connection: AsyncConnection, event: RunEvent, **values: object) -> None:
    await connection.execute(update(runs).where(runs.c.run_id == event.run_id).values(last_seq=event.seq, **values))


async def _upsert_node(
    connection: AsyncConnection, event: NodeScheduled | NodeSucceeded | NodeFailed | NodeSkipped, **values: object
) -> None:
    statement = pg_insert(node_executions).values(
        run_id=event.run_id, node_id=event.node_id, node_type=event.node_type, **values
    )
    await connection.execute(statement.on_conflict_do_update(index_elements=["run_id", "node_id"], set_=values))
