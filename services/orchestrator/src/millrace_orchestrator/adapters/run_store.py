"""The run log in PostgreSQL: load a run's events, append new ones under the ``(run_id, seq)`` guard,
and keep the ``runs`` and ``node_executions`` projections in step within the same transaction."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from pydantic import TypeAdapter

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_common.bulk import JsonText, Write, execute_together, insert_rows, insert_write, rows_document, update_write
from millrace_common.messages.envelope import utc_now
from millrace_common.messages.run_events import RUN_EVENT, AnyRunEvent, RunEvent
from millrace_common.pg import psycopg_sql
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
_RUN_EVENTS = TypeAdapter(list[AnyRunEvent])


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
    """``workflow_load`` for several workflows in one statement; each count is bounded by an index
    (runs of the last hour; runs running now), so its cost does not grow with a workflow's history."""
    keys = sorted(set(workflows))
    if not keys:
        return {}
    rows = await connection.execute(
        text(
            "select w.tenant_id, w.workflow_id,"
            " (select count(*) from runs r where r.tenant_id = w.tenant_id and r.workflow_id = w.workflow_id"
            "   and r.started_at > :since and r.status <> 'throttled'),"
            " (select count(*) from runs r where r.tenant_id = w.tenant_id and r.workflow_id = w.workflow_id"
            "   and r.status = 'running')"
            " from jsonb_to_recordset(cast(:keys as jsonb)) as w(tenant_id text, workflow_id uuid)"
        ),
        {"since": now - timedelta(hours=1), "keys": json.dumps([{"tenant_id": t, "workflow_id": str(w)} for t, w in keys])},
    )
    return {(row[0], row[1]): (int(row[2]), int(row[3])) for row in rows}


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

    def peek(self, workflow_id: UUID, version: int) -> WorkflowDefinition | None:
        """The definition when it is loaded already, without a round trip."""
        return self._entries.get((workflow_id, version))

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


async def append(
    connection: AsyncConnection,
    events: Sequence[RunEvent],
    *,
    payloads: Sequence[str] | None = None,
    together_with: Sequence[Write] = (),
) -> None:
    """Append events (their ``seq`` already assigned; a concurrent writer makes the insert fail), bring
    the projections in step, and run ``together_with`` (the outbox rows): one statement, one round
    trip, whatever the number of events. ``payloads`` are the events as JSON, when the caller has them."""
    await execute_together(connection, [*append_writes(events, payloads=payloads), *together_with])


def append_writes(events: Sequence[RunEvent], *, payloads: Sequence[str] | None = None) -> list[Write]:
    """The writes of ``append``: the log rows and the projections (none without events).

    The events travel as one JSON array of their serialised text, and PostgreSQL takes the row's
    columns out of each (see :func:`observers_write`, which publishes the same text)."""
    if not events:
        return []
    texts = payloads if payloads is not None else [e.model_dump_json() for e in events]
    return [
        Write(
            "select e, cast(e as jsonb) as j, n from json_array_elements(cast(:events as json))"
            " with ordinality as t(e, n)",
            {"events": "[" + ",".join(texts) + "]"},
            name=NEW_EVENTS,
        ),
        Write(
            "insert into run_events (run_id, seq, event_id, type, payload, recorded_at)"
            " select cast(j->>'run_id' as uuid), cast(j->>'seq' as integer), cast(j->>'message_id' as uuid),"
            f" j->>'type', j, now() from {NEW_EVENTS} order by n",
            {},
        ),
        *projection_writes(project(events)),
    ]


NEW_EVENTS = "new_events"
"""The ``append_writes`` clause that holds the events: ``e`` (the text as given), ``j`` (as jsonb), ``n``."""


def observers_write(producer: str, topic: str) -> Write:
    """Outbox rows that publish each appended event, as the text it was given in, keyed by its run;
    runs with ``append_writes``, returning the rows' ids."""
    return Write(
        "insert into outbox (producer, topic, key, value, created_at)"
        " select :observers_producer, :observers_topic, convert_to(j->>'run_id', 'UTF8'),"
        f" convert_to(cast(e as text), 'UTF8'), now() from {NEW_EVENTS} order by n returning id",
        {"observers_producer": producer, "observers_topic": topic},
    )


def claims_write(consumer: str, message_ids: Iterable[UUID]) -> Write | None:
    """Record that ``consumer`` handled these messages. Without ``on conflict``: a message another
    writer claimed meanwhile makes the statement fail, and with it everything written alongside."""
    now = utc_now()
    rows = [{"consumer": consumer, "message_id": m, "processed_at": now} for m in dict.fromkeys(message_ids)]
    return insert_write(processed_messages, rows, param="claims") if rows else None


@dataclass(frozen=True)
class BatchRead:
    """What a batch of messages needs from the database, read in one statement."""

    processed: frozenset[UUID]
    """Ids of the batch's messages this consumer handled before."""
    refs: dict[UUID, tuple[UUID, int]]
    """Workflow id and version of the runs asked about."""
    tails: dict[UUID, list[RunEvent]]
    """Each run's events after the seq asked from, in order."""
    loads: dict[tuple[str, UUID], tuple[int, int]]
    """Per (tenant, workflow): runs started in the last hour (not throttled), runs running now."""


_READ_BATCH = psycopg_sql(
    "select"
    " (select coalesce(string_agg(cast(p.message_id as text), ','), '') from processed_messages p"
    "   where p.consumer = :consumer"
    "   and p.message_id in (select cast(x as uuid) from jsonb_array_elements_text(cast(:messages as jsonb)) x)),"
    " (select coalesce(jsonb_agg(jsonb_build_array(r.run_id, r.workflow_id, r.workflow_version)), '[]') from runs r"
    "   where r.run_id in (select cast(x as uuid) from jsonb_array_elements_text(cast(:runs as jsonb)) x)),"
    " cast((select coalesce(json_agg(e.payload order by e.run_id, e.seq), '[]') from run_events e"
    "   join jsonb_to_recordset(cast(:tails as jsonb)) as t(run_id uuid, after_seq integer)"
    "   on e.run_id = t.run_id and e.seq > t.after_seq) as text),"
    " (select coalesce(jsonb_agg(jsonb_build_array(w.tenant_id, w.workflow_id,"
    "   (select count(*) from runs r where r.tenant_id = w.tenant_id and r.workflow_id = w.workflow_id"
    "     and r.started_at > :since and r.status <> 'throttled'),"
    "   (select count(*) from runs r where r.tenant_id = w.tenant_id and r.workflow_id = w.workflow_id"
    "     and r.status = 'running'))), '[]')"
    "   from jsonb_to_recordset(cast(:workflows as jsonb)) as w(tenant_id text, workflow_id uuid))"
)


async def read_batch(
    connection: psycopg.AsyncConnection[Any],
    consumer: str,
    message_ids: Iterable[UUID],
    refs_of: Iterable[UUID],
    after_seqs: dict[UUID, int],
    workflows: Iterable[tuple[str, UUID]],
    now: datetime,
) -> BatchRead:
    """One round trip for a batch: which messages were handled before, the workflow version of the
    runs in ``refs_of``, each run's log after its seq in ``after_seqs``, and the load of
    ``workflows`` (each count bounded by an index, as in ``workflow_loads``)."""
    params = {
        "consumer": consumer,
        "messages": json.dumps([str(m) for m in message_ids]),
        "runs": json.dumps([str(r) for r in refs_of]),
        "tails": json.dumps([{"run_id": str(r), "after_seq": seq} for r, seq in after_seqs.items()]),
        "since": now - timedelta(hours=1),
        "workflows": json.dumps([{"tenant_id": t, "workflow_id": str(w)} for t, w in sorted(set(workflows))]),
    }
    cursor = await connection.execute(_READ_BATCH, params, prepare=True)
    row = await cursor.fetchone()
    assert row is not None
    processed, refs, tails_text, loads = row
    tails: dict[UUID, list[RunEvent]] = {}
    for event in _RUN_EVENTS.validate_json(tails_text):
        tails.setdefault(event.run_id, []).append(event)
    return BatchRead(
        processed=frozenset(UUID(m) for m in processed.split(",") if m),
        refs={UUID(r): (UUID(w), int(v)) for r, w, v in refs},
        tails=tails,
        loads={(t, UUID(w)): (int(started), int(running)) for t, w, started, running in loads},
    )


async def write_batch(connection: psycopg.AsyncConnection[Any], write: Write) -> list[int]:
    """Run a ``together(..., ids_of=...)`` statement on a direct connection; the ids it returns."""
    cursor = await connection.execute(psycopg_sql(write.sql), write.params)
    if cursor.description is None:
        return []
    row = await cursor.fetchone()
    return [int(i) for i in row[0].split(",") if i] if row is not None and isinstance(row[0], str) else []


def projection_writes(writes: ProjectionWrites) -> list[Write]:
    """The statements of a folded projection. They run as one statement, so none may change a row
    another changes: ``ProjectionWrites`` keeps the batch's own rows apart from older ones, and
    ``older_node_changes`` folds the changes of older node rows to one per row."""
    statements: list[Write] = []
    attempts = [{"run_id": t.run_id, "node_id": t.node_id, "attempt": t.attempt} for t in writes.settled_attempt_timers]
    if writes.fired_timers or writes.finished_run_timers or attempts:
        statements.append(
            Write(
                "delete from timers where"
                " timer_id in (select cast(x as uuid) from jsonb_array_elements_text(cast(:fired as jsonb)) x)"
                " or run_id in (select cast(x as uuid) from jsonb_array_elements_text(cast(:finished as jsonb)) x)"
                " or (purpose = 'node_timeout' and exists (select 1 from jsonb_to_recordset(cast(:settled as jsonb))"
                "  as s(run_id uuid, node_id text, attempt integer)"
                "  where s.run_id = timers.run_id and s.node_id = timers.node_id and s.attempt = timers.attempt))",
                {
                    "fired": json.dumps([str(t) for t in writes.fired_timers]),
                    "finished": json.dumps([str(r) for r in writes.finished_run_timers]),
                    "settled": rows_document(attempts),
                },
            )
        )
    explicit, untouched = writes.older_node_changes()
    if explicit:
        statements.append(
            Write(
                "update node_executions n set status = s.status"
                " from jsonb_to_recordset(cast(:node_statuses as jsonb)) as s(run_id uuid, node_id text, status text)"
                " where n.run_id = s.run_id and n.node_id = s.node_id",
                {"node_statuses": rows_document(
                    [{"run_id": r, "node_id": n, "status": status} for (r, n), status in explicit.items()]
                )},
            )
        )
    if untouched:
        statements.append(
            Write(
                "update node_executions n set status = 'abandoned'"
                " from jsonb_to_recordset(cast(:abandoned as jsonb)) as a(run_id uuid, keep jsonb)"
                f" where n.run_id = a.run_id and n.status in ({', '.join(repr(status) for status in IN_FLIGHT)})"
                " and not (a.keep ? n.node_id)",
                {"abandoned": rows_document([{"run_id": r, "keep": sorted(keep)} for r, keep in untouched.items()])},
            )
        )
    for index, (_, updates) in enumerate(_by_columns(writes.run_updates.items()).items()):
        rows = [{"run_id": run_id, **row} for run_id, row in updates]
        statements.append(update_write(runs, "run_id", rows, param=f"run_updates{index}"))
    if writes.new_runs:
        statements.append(insert_write(runs, list(writes.new_runs.values()), param="new_runs"))
    for index, (columns, node_rows) in enumerate(_by_columns(writes.node_rows.items()).items()):
        statements.append(
            insert_write(
                node_executions,
                [{"run_id": run_id, "node_id": node_id, **row} for (run_id, node_id), row in node_rows],
                param=f"node_rows{index}",
                conflict_keys=("run_id", "node_id"),
                update_on_conflict=columns,
            )
        )
    if writes.new_timers:
        statements.append(insert_write(timers, list(writes.new_timers.values()), param="new_timers"))
    return statements


def _by_columns(items: Iterable[tuple[K, Row]]) -> dict[tuple[str, ...], list[tuple[K, Row]]]:
    """Rows grouped by the columns they set, one executemany statement per group."""
    groups: dict[tuple[str, ...], list[tuple[K, Row]]] = {}
    for key, row in items:
        groups.setdefault(tuple(sorted(row)), []).append((key, row))
    return groups
