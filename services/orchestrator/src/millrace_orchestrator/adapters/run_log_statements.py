"""The run log's statements in PostgreSQL (for ``run_log.PostgresRunLog``): one read of what a batch
needs, and one write of its claims, events, projections and outbox rows, checked when asked. New
events are appended under the ``(run_id, seq)`` key, so a concurrent writer makes the write fail
whole, and the ``runs`` and ``node_executions`` projections are kept in step in the same statement."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.run_events import AnyRunEvent, RunEvent, concerns_approvals
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_APPROVALS, RUNS_EVENTS, ConsumerGroup, Namespace
from millrace_common.platform.bulk import Write, insert_write, rows_document, together, update_write
from millrace_common.platform.outbox import Record, outbox_write, records
from millrace_common.platform.pg import array_literal, execute
from millrace_common.platform.tables import (
    node_executions,
    processed_messages,
    runs,
    tasks,
    timers,
    workflow_starts,
)
from pydantic import TypeAdapter

from millrace_orchestrator.adapters.run_log_waits import record_wait_writes
from millrace_orchestrator.domain.decide import WorkflowStarts
from millrace_orchestrator.domain.projection import IN_FLIGHT, ProjectionWrites, Row, project, start_minute
from millrace_orchestrator.domain.state import ATTEMPT_GUARDS

_GUARDS = ", ".join(f"'{purpose}'" for purpose in sorted(ATTEMPT_GUARDS))

K = TypeVar("K")
CONSUMER = ConsumerGroup.ORCHESTRATOR.value
"""The consumer whose ``processed_messages`` rows the orchestrator writes."""
_RUN_EVENTS = TypeAdapter(list[AnyRunEvent])


def append_writes(events: Sequence[RunEvent], *, payloads: Sequence[str] | None = None) -> list[Write]:
    """The log rows of ``events`` (their ``seq`` already assigned: a concurrent writer makes the
    insert fail) and the projections they change (none without events).

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


def batch_write(
    namespace: Namespace,
    producer: str,
    events: Sequence[RunEvent],
    commands: Sequence[Outgoing],
    claims: Sequence[UUID],
    checks: Sequence[Write] = (),
    run_has_approvals: Callable[[UUID], bool] = lambda _: False,
    may_wait_for_records: Callable[[UUID], bool] = lambda _: True,
) -> tuple[Write | None, list[Record]]:
    """The statement that writes the claims, the events, their projections, the commands, the
    events for observers and those for the approval service (``runs.approvals``: see
    ``concerns_approvals``), returning the outbox rows' ids, and holding ``checks``; and those
    rows' messages. Each event is serialised once, for the log, for the topics and for the relay."""
    payloads = [e.model_dump_json() for e in events]
    topic = namespace.topic(RUNS_EVENTS)
    writes = append_writes(events, payloads=payloads)
    if events:
        writes.extend(record_wait_writes(events, may_wait_for_records, utc_now()))
    claimed = claims_write(CONSUMER, claims)
    if claimed is not None:
        writes.append(claimed)
    ids_of: list[int] = []
    if commands:
        writes.append(outbox_write(namespace, producer, commands, returning_ids=True))
        ids_of.append(len(writes) - 1)
    if events:
        writes.append(observers_write(producer, topic))
        ids_of.append(len(writes) - 1)
    for_approvals = [
        Outgoing(RUNS_APPROVALS, str(e.run_id), e, value=text.encode())
        for e, text in zip(events, payloads, strict=True)
        if concerns_approvals(e, run_has_approvals(e.run_id))
    ]
    if for_approvals:
        writes.append(outbox_write(namespace, producer, for_approvals, param="approvals", returning_ids=True))
        ids_of.append(len(writes) - 1)
    if not writes:
        return None, []
    checked = list(range(len(writes), len(writes) + len(checks)))
    writes.extend(checks)
    observed = [
        (topic, str(e.run_id).encode(), text.encode()) for e, text in zip(events, payloads, strict=True)
    ]
    messages = [*records(namespace, commands), *observed, *records(namespace, for_approvals)]
    return together(writes, ids_of=ids_of, checks=checked), messages


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


def _hour_before(now: datetime) -> datetime:
    """Where ``_LOAD_COUNTS`` starts counting a workflow's runs: the start of the minute an hour ago."""
    return start_minute(now - timedelta(hours=1))


_LOAD_COUNTS = (
    # A workflow ``w``'s runs started since ``:since`` (summed per minute) and its runs running now.
    "(select coalesce(sum(s.started), 0) from workflow_starts s"
    " where s.tenant_id = w.tenant_id and s.workflow_id = w.workflow_id and s.minute >= :since),"
    " (select count(*) from runs r where r.tenant_id = w.tenant_id and r.workflow_id = w.workflow_id"
    " and r.status = 'running')"
)
_READ_BATCH = (
    # Each part probes an index once per key of the batch: the ``offset 0`` keeps the planner from
    # turning a lateral lookup into a join that scans the whole table (its row estimates for the
    # parameters are guesses, and a generic plan is made once for every batch size).
    "select"
    " (select coalesce(string_agg(cast(m.id as text), ','), '')"
    " from unnest(cast(:messages as uuid[])) as m(id)"
    "   cross join lateral (select 1 from processed_messages p"
    "     where p.consumer = :consumer and p.message_id = m.id offset 0) as seen),"
    " (select coalesce(jsonb_agg(jsonb_build_array(r.run_id, r.workflow_id, r.workflow_version)), '[]')"
    "   from unnest(cast(:runs as uuid[])) as q(id)"
    "   cross join lateral (select run_id, workflow_id, workflow_version from runs"
    " where run_id = q.id offset 0) as r),"
    " cast((select coalesce(json_agg(x.payload order by x.run_id, x.seq), '[]')"
    "   from jsonb_to_recordset(cast(:tails as jsonb)) as t(run_id uuid, after_seq integer)"
    "   cross join lateral (select e.run_id, e.seq, e.payload from run_events e"
    "     where e.run_id = t.run_id and e.seq > t.after_seq offset 0) as x) as text),"
    f" (select coalesce(jsonb_agg(jsonb_build_array(w.tenant_id, w.workflow_id, {_LOAD_COUNTS})), '[]')"
    "   from jsonb_to_recordset(cast(:workflows as jsonb)) as w(tenant_id text, workflow_id uuid))"
)


BATCH_CHECK = "batch_check"
_BATCH_CHECK_SQL = (
    # Index probes per run (the newest seq of its log) and per workflow (as in the batch read); the
    # statement's snapshot is the tables before its own writes.
    "select millrace_ensure("
    " (select coalesce(bool_and(coalesce(x.newest = t.expected, false)), true)"
    "   from jsonb_to_recordset(cast(:check_runs as jsonb)) as t(run_id uuid, expected integer)"
    "   cross join lateral (select coalesce(max(e.seq), 0) as newest from run_events e"
    "     where e.run_id = t.run_id offset 0) as x)"
    " and (select coalesce(bool_and(coalesce(l.started + w.starts <= w.per_hour"
    "     and (w.concurrent is null or l.running + w.peak <= w.concurrent), false)), true)"
    "   from jsonb_to_recordset(cast(:check_loads as jsonb))"
    "     as w(tenant_id text, workflow_id uuid, starts integer, peak integer, per_hour integer,"
    " concurrent integer)"
    f"   cross join lateral (select {_LOAD_COUNTS}) as l(started, running)),"
    " 'the batch was decided on a run state or a workflow load that has changed') as ok"
)


def batch_check(
    expected_seqs: dict[UUID, int], starts: dict[tuple[str, UUID], WorkflowStarts], now: datetime
) -> Write:
    """A check (see ``together``) that each run's log ends at its expected seq (0: no log yet) and
    that each workflow in ``starts`` stays within its limits with the batch's new runs, counted as
    the batch read counts them. An input that is missing (NULL) fails the check."""
    return Write(
        _BATCH_CHECK_SQL,
        {
            "check_runs": rows_document([{"run_id": r, "expected": seq} for r, seq in expected_seqs.items()]),
            "check_loads": rows_document(
                [
                    {
                        "tenant_id": t,
                        "workflow_id": w,
                        "starts": s.starts,
                        "peak": s.peak,
                        "per_hour": s.per_hour,
                        "concurrent": s.concurrent,
                    }
                    for (t, w), s in starts.items()
                ]
            ),
            "since": _hour_before(now),
        },
        name=BATCH_CHECK,
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
    ``workflows``. Every part is index lookups for the batch's own keys: its cost does not grow with
    the log, the processed messages or a workflow's rate (runs started in the last hour are summed
    from per-minute counts, ``workflow_starts``, the hour counted from the start of its first
    minute, so up to a minute more than an hour)."""
    params = {
        "consumer": consumer,
        "messages": array_literal(message_ids),
        "runs": array_literal(refs_of),
        "tails": rows_document([{"run_id": r, "after_seq": seq} for r, seq in after_seqs.items()]),
        "since": _hour_before(now),
        "workflows": rows_document([{"tenant_id": t, "workflow_id": w} for t, w in sorted(set(workflows))]),
    }
    cursor = await execute(connection, _READ_BATCH, params, prepare=True)
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
    cursor = await execute(connection, write.sql, write.params)
    if cursor.description is None:
        return []
    row = await cursor.fetchone()
    return _written_ids(row[-1] if row is not None else None)


def _written_ids(returned: object) -> list[int]:
    """The ids a ``together(..., ids_of=...)`` statement returned (comma-separated text)."""
    return [int(i) for i in returned.split(",") if i] if isinstance(returned, str) else []


def projection_writes(writes: ProjectionWrites) -> list[Write]:
    """The statements of a folded projection. They run as one statement, so none may change a row
    another changes: ``ProjectionWrites`` keeps the batch's own rows apart from older ones, and
    ``older_node_changes`` folds the changes of older node rows to one per row."""
    statements: list[Write] = []
    attempts = [
        {"run_id": t.run_id, "node_id": t.node_id, "attempt": t.attempt}
        for t in writes.settled_attempt_timers
    ]
    if writes.fired_timers or writes.finished_run_timers or attempts:
        statements.append(
            Write(
                # Index probes per key (the timer's id, the run's timers), never a scan of the table.
                "delete from timers where timer_id in ("
                " select cast(x as uuid) from jsonb_array_elements_text(cast(:fired as jsonb)) x"
                " union all select t.timer_id from jsonb_array_elements_text(cast(:finished as jsonb)) f"
                "  cross join lateral (select timer_id from timers where run_id = cast(f as uuid) offset 0) t"
                " union all select t.timer_id from jsonb_to_recordset(cast(:settled as jsonb))"
                "  as s(run_id uuid, node_id text, attempt integer)"
                "  cross join lateral (select timer_id from timers where run_id = s.run_id"
                f"   and purpose in ({_GUARDS}) and node_id = s.node_id"
                "   and attempt = s.attempt"
                " offset 0) t)",
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
                " from jsonb_to_recordset(cast(:node_statuses as jsonb))"
                " as s(run_id uuid, node_id text, status text)"
                " where n.run_id = s.run_id and n.node_id = s.node_id",
                {
                    "node_statuses": rows_document(
                        [{"run_id": r, "node_id": n, "status": status} for (r, n), status in explicit.items()]
                    )
                },
            )
        )
    if untouched:
        statements.append(
            Write(
                "update node_executions n set status = 'abandoned'"
                " from jsonb_to_recordset(cast(:abandoned as jsonb)) as a(run_id uuid, keep jsonb)"
                " where n.run_id = a.run_id"
                f" and n.status in ({', '.join(repr(status) for status in IN_FLIGHT)})"
                " and not (a.keep ? n.node_id)",
                {
                    "abandoned": rows_document(
                        [{"run_id": r, "keep": sorted(keep)} for r, keep in untouched.items()]
                    )
                },
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
    for index, (_, closed) in enumerate(_by_columns(writes.closed_tasks.items()).items()):
        rows = [{"id": task_id, **row} for task_id, row in closed]
        statements.append(update_write(tasks, "id", rows, param=f"closed_tasks{index}"))
    for index, (_, new) in enumerate(_by_columns(writes.new_tasks.items()).items()):
        statements.append(
            insert_write(
                tasks,
                [row for _, row in new],
                param=f"new_tasks{index}",
                conflict_keys=("id",),
                # Paused on the same node again after a retry: the task opens again.
                update_on_conflict=("status", "title", "message", "created_at", "done_at", "done_by"),
            )
        )
    if writes.starts:
        starts = [
            {"tenant_id": t, "workflow_id": w, "minute": m, "started": n}
            for (t, w, m), n in writes.starts.items()
        ]
        insert = insert_write(workflow_starts, starts, param="starts")
        counted = (
            " on conflict (tenant_id, workflow_id, minute)"
            " do update set started = workflow_starts.started + excluded.started"
        )
        statements.append(Write(insert.sql + counted, insert.params))
    return statements


def _by_columns(items: Iterable[tuple[K, Row]]) -> dict[tuple[str, ...], list[tuple[K, Row]]]:
    """Rows grouped by the columns they set, one executemany statement per group."""
    groups: dict[tuple[str, ...], list[tuple[K, Row]]] = {}
    for key, row in items:
        groups.setdefault(tuple(sorted(row)), []).append((key, row))
    return groups
