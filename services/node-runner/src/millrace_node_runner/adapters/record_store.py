"""Records and tasks written by nodes, tenant-scoped, in PostgreSQL.

Every write happens once per (run, node, attempt): the transaction first claims that key in
``runner_executions`` (a concurrent duplicate waits on the claim, then finds it taken), makes the
change, adds the record event to the outbox and stores the output; a redelivered command gets the
stored output back. Record events are published by the outbox relay after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.node_commands import ExecuteNode
from millrace_common.contracts.messages.records import (
    RecordCreated,
    RecordDeleted,
    RecordEvent,
    RecordUpdated,
)
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RECORDS_EVENTS, Namespace
from millrace_common.language.conditions import Condition, ConditionError
from millrace_common.platform.outbox import OutboxRelay, enqueue
from millrace_common.platform.tables import pipelines, records, runner_executions, tasks
from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql.elements import ColumnElement

from millrace_node_runner.domain.inputs import SortKeyInput
from millrace_node_runner.domain.outcomes import Failed, NodeRefused, Outcome, Succeeded, failed
from millrace_node_runner.domain.records import (
    Prefilter,
    condition_failure,
    matches,
    new_data,
    next_depth,
    parse_record_id,
    record_view,
    side_effect_id,
)
from millrace_node_runner.settings import PRODUCER

Write = Callable[[AsyncConnection], Awaitable[tuple[JsonObject, Sequence[RecordEvent]]]]


class RecordStore:
    def __init__(
        self, engine: AsyncEngine, namespace: Namespace, relay: OutboxRelay, *, max_scan: int
    ) -> None:
        self._engine = engine
        self._namespace = namespace
        self._relay = relay
        self._max_scan = max_scan

    async def once(self, command: ExecuteNode, write: Write, now: datetime) -> Outcome:
        """Run ``write`` at most once for the command's (run, node, attempt); see the module doc."""
        key = {"run_id": command.run_id, "node_id": command.node_id, "attempt": command.attempt}
        try:
            async with self._engine.begin() as connection:
                claimed = (
                    await connection.execute(
                        pg_insert(runner_executions)
                        .values(
                            **key, tenant_id=command.tenant_id, node_type=command.node_type, recorded_at=now
                        )
                        .on_conflict_do_nothing()
                        .returning(runner_executions.c.run_id)
                    )
                ).first()
                if claimed is None:
                    stored = (
                        await connection.execute(
                            select(runner_executions.c.tenant_id, runner_executions.c.output).where(
                                *(runner_executions.c[name] == value for name, value in key.items())
                            )
                        )
                    ).one()
                    if stored.tenant_id != command.tenant_id:
                        return failed(
                            NodeErrorType.INVALID_INPUT,
                            "this run's node belongs to another tenant",
                            retryable=False,
                        )
                    return Succeeded(stored.output or {})
                output, events = await write(connection)
                await connection.execute(
                    update(runner_executions)
                    .where(*(runner_executions.c[name] == value for name, value in key.items()))
                    .values(output=output)
                )
                await enqueue(
                    connection,
                    self._namespace,
                    PRODUCER,
                    [Outgoing(RECORDS_EVENTS, e.record_id, e) for e in events],
                )
        except NodeRefused as refused:
            return refused.outcome
        if events:
            # The change is committed with its events in the outbox: the relay publishes them in the
            # background. Waiting for Kafka here could outlast the node's timeout (a broker outage),
            # and a `timeout` failure of a committed change would make its retry change it twice.
            self._relay.wake()
        return Succeeded(output)

    # -- the writes -------------------------------------------------------------------------------

    def create(self, command: ExecuteNode, pipeline_id: str, data: JsonObject, now: datetime) -> Write:
        async def write(connection: AsyncConnection) -> tuple[JsonObject, Sequence[RecordEvent]]:
            await _require_pipeline(connection, command.tenant_id, pipeline_id)
            record_id = side_effect_id(command.run_id, command.node_id, command.attempt)
            await connection.execute(
                insert(records).values(
                    id=record_id,
                    tenant_id=command.tenant_id,
                    pipeline_id=pipeline_id,
                    data=data,
                    created_at=now,
                    updated_at=now,
                )
            )
            event = RecordCreated(
                **_event_fields(command, now), pipeline_id=pipeline_id, record_id=str(record_id), data=data
            )
            return {"record": record_view(record_id, pipeline_id, data, now, now)}, [event]

        return write

    def update(
        self,
        command: ExecuteNode,
        pipeline_id: str,
        record_text: str,
        change: JsonObject,
        mode: str,
        now: datetime,
    ) -> Write:
        async def write(connection: AsyncConnection) -> tuple[JsonObject, Sequence[RecordEvent]]:
            old = await _locked_record(connection, command.tenant_id, pipeline_id, record_text)
            data = new_data(old.data, change, mode)
            await connection.execute(
                update(records).where(records.c.id == old.id).values(data=data, updated_at=now)
            )
            event = RecordUpdated(
                **_event_fields(command, now),
                pipeline_id=pipeline_id,
                record_id=str(old.id),
                data=data,
                old_data=old.data,
            )
            return {"record": record_view(old.id, pipeline_id, data, old.created_at, now)}, [event]

        return write

    def delete(self, command: ExecuteNode, pipeline_id: str, record_text: str, now: datetime) -> Write:
        async def write(connection: AsyncConnection) -> tuple[JsonObject, Sequence[RecordEvent]]:
            old = await _locked_record(connection, command.tenant_id, pipeline_id, record_text)
            await connection.execute(delete(records).where(records.c.id == old.id))
            event = RecordDeleted(
                **_event_fields(command, now),
                pipeline_id=pipeline_id,
                record_id=str(old.id),
                old_data=old.data,
            )
            return {
                "deleted": True,
                "record": record_view(old.id, pipeline_id, old.data, old.created_at, old.updated_at),
            }, [event]

        return write

    def create_task(
        self,
        command: ExecuteNode,
        *,
        user: str | None,
        role: str | None,
        title: str,
        message: str,
        now: datetime,
    ) -> Write:
        async def write(connection: AsyncConnection) -> tuple[JsonObject, Sequence[RecordEvent]]:
            task_id = side_effect_id(command.run_id, command.node_id, command.attempt)
            await connection.execute(
                insert(tasks).values(
                    id=task_id,
                    tenant_id=command.tenant_id,
                    assignee_user=user,
                    assignee_role=role,
                    title=title,
                    message=message,
                    run_id=command.run_id,
                    node_id=command.node_id,
                    status="open",
                    created_at=now,
                )
            )
            assignee: JsonObject = {"user": user} if user is not None else {"role": role}
            return {"task_id": str(task_id), "assignee": assignee, "status": "open"}, []

        return write

    # -- reading ----------------------------------------------------------------------------------

    async def find(
        self,
        tenant_id: str,
        pipeline_id: str,
        condition: Condition | None,
        narrowed: Prefilter,
        sort: Sequence[SortKeyInput],
        limit: int,
        now: datetime,
    ) -> Outcome:
        """Filters are evaluated here, as conditions are everywhere else; the database narrows by
        ``narrowed`` and sorts. At most ``max_scan`` records are examined."""
        found: list[JsonObject] = []
        examined = 0
        async with self._engine.connect() as connection:
            if not await _pipeline_exists(connection, tenant_id, pipeline_id):
                return _pipeline_missing(pipeline_id)
            if narrowed.matches_nothing:
                return Succeeded({"records": [], "count": 0})
            query = select(records).where(
                records.c.tenant_id == tenant_id, records.c.pipeline_id == pipeline_id
            )
            if narrowed.record_id is not None:
                query = query.where(records.c.id == narrowed.record_id)
            if narrowed.contains:
                query = query.where(records.c.data.contains(narrowed.contains))
            query = query.order_by(*_ordering(sort), records.c.id).limit(self._max_scan + 1)
            rows = await connection.stream(query.execution_options(yield_per=500))
            try:
                async for row in rows:
                    examined += 1
                    if examined > self._max_scan:
                        return failed(
                            NodeErrorType.TOO_MANY_RECORDS,
                            f"the filters needed more than {self._max_scan} records of {pipeline_id!r} "
                            "examined; add an equals filter on a data field or on id to narrow the search",
                            retryable=False,
                        )
                    view = record_view(row.id, row.pipeline_id, row.data, row.created_at, row.updated_at)
                    try:
                        if matches(condition, view, now):
                            found.append(view)
                    except ConditionError as error:
                        return condition_failure(error)
                    if len(found) == limit:
                        break
            finally:
                await rows.close()
        return Succeeded({"records": found, "count": len(found)})


def _ordering(sort: Sequence[SortKeyInput]) -> list[ColumnElement]:
    columns = []
    for key in sort:
        path = key.field.split(".")
        column = records.c[path[0]] if len(path) == 1 else records.c.data[tuple(path[1:])]
        columns.append(column.desc().nulls_last() if key.direction == "desc" else column.asc().nulls_last())
    return columns


def _event_fields(command: ExecuteNode, now: datetime) -> dict[str, object]:
    return {
        "tenant_id": command.tenant_id,
        "occurred_at": now,
        "correlation_id": command.run_id,
        "causation_id": command.message_id,
        "causation_depth": next_depth(command.causation_depth),
        "caused_by_run": command.run_id,
    }


async def _pipeline_exists(connection: AsyncConnection, tenant_id: str, pipeline_id: str) -> bool:
    found = await connection.execute(
        select(pipelines.c.id).where(pipelines.c.tenant_id == tenant_id, pipelines.c.id == pipeline_id)
    )
    return found.first() is not None


def _pipeline_missing(pipeline_id: str) -> Failed:
    return failed(NodeErrorType.NOT_FOUND, f"the pipeline {pipeline_id!r} does not exist", retryable=False)


async def _require_pipeline(connection: AsyncConnection, tenant_id: str, pipeline_id: str) -> None:
    if not await _pipeline_exists(connection, tenant_id, pipeline_id):
        raise NodeRefused(_pipeline_missing(pipeline_id))


async def _locked_record(
    connection: AsyncConnection, tenant_id: str, pipeline_id: str, record_text: str
) -> Row:
    record_id = parse_record_id(record_text)
    row = None
    if record_id is not None:
        row = (
            await connection.execute(
                select(records)
                .where(
                    records.c.id == record_id,
                    records.c.tenant_id == tenant_id,
                    records.c.pipeline_id == pipeline_id,
                )
                .with_for_update()
            )
        ).first()
    if row is None:
        raise NodeRefused(
            failed(
                NodeErrorType.NOT_FOUND,
                f"no record {record_text!r} in the pipeline {pipeline_id!r}",
                retryable=False,
            )
        )
    return row
