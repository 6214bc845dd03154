"""The run log in PostgreSQL: load a run's events, append new ones under the ``(run_id, seq)`` guard,
and keep the ``runs`` and ``node_executions`` projections in step within the same transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TypeVar
from uuid import UUID

from sqlalchemy import bindparam, delete, func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_common.bulk import JsonText, insert_rows, update_rows
from millrace_common.messages.envelope import utc_now
from millrace_common.messages.run_events import RUN_EVENT, RunEvent
from millrace_common.tables import (
    node_executions,
    processed_messages,
    run_events,
    runs,
    timers,
    workflow_versions,
)
from millrace_common.workflow import WorkflowDefinition

from millrace_orchestrator.domain.projection import IN_FLIGHT, ProjectionWrites, Row, project

K = TypeVar("K")


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


async def claim_messages(connection: AsyncConnection, consumer: str, message_ids: Sequence[UUID]) -> set[UUID]:
    """``claim_message`` for a batch in one statement: the ids not handled before."""
    now = utc_now()
    rows = [{"consumer": consumer, "message_id": m, "processed_at": now} for m in dict.fromkeys(message_ids)]
    claimed = await insert_rows(
        connection, processed_messages, rows, conflict_keys=("consumer", "message_id"), returning="message_id"
    )
    return set(claimed)


async def load_tails(connection: AsyncConnection, after_seqs: dict[UUID, int]) -> dict[UUID, list[RunEvent]]:
    """For each run, its events after the given seq, in order; one round trip for the batch."""
    if not after_seqs:
        return {}
    rows = await connection.execute(
        text(
            "select e.run_id, e.payload from run_events e"
            " join unnest(cast(:run_ids as uuid[]), cast(:after as integer[])) as t(run_id, after_seq)"
            " on e.run_id = t.run_id and e.seq > t.after_seq order by e.run_id, e.seq"
        ),
        {"run_ids": list(after_seqs), "after": list(after_seqs.values())},
    )
    tails: dict[UUID, list[RunEvent]] = {}
    for row in rows:
        tails.setdefault(row.run_id, []).append(RUN_EVENT.validate_python(row.payload))
    return tails


async def run_definition_refs(connection: AsyncConnection, run_ids: Iterable[UUID]) -> dict[UUID, tuple[UUID, int]]:
    """``run_definition_ref`` for many runs; runs without a row are absent."""
    ids = list(run_ids)
    if not ids:
        return {}
    rows = await connection.execute(
        select(runs.c.run_id, runs.c.workflow_id, runs.c.workflow_version).where(runs.c.run_id.in_(ids))
    )
    return {row.run_id: (row.workflow_id, row.workflow_version) for row in rows}


async def workflow_loads(
    connection: AsyncConnection, workflows: Iterable[tuple[str, UUID]], now: datetime
) -> dict[tuple[str, UUID], tuple[int, int]]:
    """``workflow_load`` for several workflows: two statements, each bounded by an index (runs of the
    last hour; runs running now), so the cost does not grow with a workflow's history."""
    keys = set(workflows)
    if not keys:
        return {}
    tenants, workflow_ids = {t for t, _ in keys}, {w for _, w in keys}
    scope = (runs.c.tenant_id.in_(tenants), runs.c.workflow_id.in_(workflow_ids))
    group = (runs.c.tenant_id, runs.c.workflow_id)
    recent = await connection.execute(
        select(*group, func.count())
        .where(*scope, runs.c.started_at > now - timedelta(hours=1), runs.c.status != "throttled")
        .group_by(*group)
    )
    started = {(row[0], row[1]): int(row[2]) for row in recent}
    active = await connection.execute(select(*group, func.count()).where(*scope, runs.c.status == "running").group_by(*group))
    running = {(row[0], row[1]): int(row[2]) for row in active}
    return {key: (started.get(key, 0), running.get(key, 0)) for key in keys}


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
    """Append events (their ``seq`` already assigned; a concurrent writer makes the insert fail) and
    bring the projections in step, with a few statements whatever the number of events."""
    if not events:
        return
    now = utc_now()
    await insert_rows(
        connection,
        run_events,
        [
            {
                "run_id": e.run_id,
                "seq": e.seq,
                "event_id": e.message_id,
                "type": e.type,
                "payload": JsonText(e.model_dump_json()),
                "recorded_at": now,
            }
            for e in events
        ],
    )
    await write_projection(connection, project(events))


async def write_projection(connection: AsyncConnection, writes: ProjectionWrites) -> None:
    """Older rows' changes first, then the batch's own rows (see ``domain.projection``)."""
    if writes.fired_timers:
        await connection.execute(delete(timers).where(timers.c.timer_id.in_(writes.fired_timers)))
    if writes.finished_run_timers:
        await connection.execute(delete(timers).where(timers.c.run_id.in_(writes.finished_run_timers)))
    if writes.settled_attempt_timers:
        await connection.execute(
            delete(timers).where(
                timers.c.run_id == bindparam("b_run_id"),
                timers.c.node_id == bindparam("b_node_id"),
                timers.c.attempt == bindparam("b_attempt"),
                timers.c.purpose == "node_timeout",
            ),
            [
                {"b_run_id": t.run_id, "b_node_id": t.node_id, "b_attempt": t.attempt}
                for t in writes.settled_attempt_timers
            ],
        )
    for run_id, node_ids, status in writes.node_status_updates:
        which = node_executions.c.status.in_(IN_FLIGHT) if node_ids is None else node_executions.c.node_id.in_(node_ids)
        await connection.execute(
            update(node_executions).where(node_executions.c.run_id == run_id, which).values(status=status)
        )
    for _, updates in _by_columns(writes.run_updates.items()).items():
        await update_rows(connection, runs, "run_id", [{"run_id": run_id, **row} for run_id, row in updates])
    await insert_rows(connection, runs, list(writes.new_runs.values()))
    for columns, node_rows in _by_columns(writes.node_rows.items()).items():
        await insert_rows(
            connection,
            node_executions,
            [{"run_id": run_id, "node_id": node_id, **row} for (run_id, node_id), row in node_rows],
            conflict_keys=("run_id", "node_id"),
            update_on_conflict=columns,
        )
    await insert_rows(connection, timers, list(writes.new_timers.values()))


def _by_columns(items: Iterable[tuple[K, Row]]) -> dict[tuple[str, ...], list[tuple[K, Row]]]:
    """Rows grouped by the columns they set, one executemany statement per group."""
    groups: dict[tuple[str, ...], list[tuple[K, Row]]] = {}
    for key, row in items:
        groups.setdefault(tuple(sorted(row)), []).append((key, row))
    return groups
