"""Pipeline and record use cases. Every record change is published on ``records.events`` (with the old
and the new data) through the outbox, in the transaction that makes the change."""

from __future__ import annotations

from uuid import UUID, uuid4

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.records import (
    RecordCreated,
    RecordDeleted,
    RecordEvent,
    RecordUpdated,
)
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RECORDS_EVENTS
from millrace_common.platform.refusals import FieldProblem
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters import records
from millrace_gateway.adapters.outbox import Outbox
from millrace_gateway.adapters.pages import Page
from millrace_gateway.domain import cursors
from millrace_gateway.domain.records import Pipeline, Record, changed_data
from millrace_gateway.domain.refusals import NotEmpty, NotFound, Taken


class Pipelines:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create(self, tenant_id: str, pipeline_id: str, name: str) -> Pipeline:
        now = utc_now()
        try:
            async with self._engine.begin() as connection:
                await records.insert_pipeline(connection, tenant_id, pipeline_id, name, now)
        except IntegrityError as error:
            raise Taken(f"pipeline {pipeline_id!r} exists", FieldProblem("/body/id", "taken")) from error
        return Pipeline(pipeline_id, name, now)

    async def all(self, tenant_id: str) -> list[Pipeline]:
        async with self._engine.connect() as connection:
            rows = await records.pipelines_with_counts(connection, tenant_id)
        return [Pipeline(row.id, row.name, row.created_at, row.record_count) for row in rows]

    async def get(self, tenant_id: str, pipeline_id: str) -> Pipeline:
        async with self._engine.connect() as connection:
            row = await _pipeline(connection, tenant_id, pipeline_id)
            count = await records.record_count(connection, tenant_id, pipeline_id)
        return Pipeline(row.id, row.name, row.created_at, count)

    async def rename(self, tenant_id: str, pipeline_id: str, name: str) -> Pipeline:
        async with self._engine.begin() as connection:
            await _pipeline(connection, tenant_id, pipeline_id)
            await records.rename_pipeline(connection, tenant_id, pipeline_id, name)
        return await self.get(tenant_id, pipeline_id)

    async def delete(self, tenant_id: str, pipeline_id: str) -> None:
        """Only an empty pipeline can be deleted; its records are deleted first, each with its event."""
        async with self._engine.begin() as connection:
            await _pipeline(connection, tenant_id, pipeline_id)
            remaining = await records.record_count(connection, tenant_id, pipeline_id)
            if remaining:
                raise NotEmpty(f"the pipeline still has {remaining} record(s)")
            await records.delete_pipeline(connection, tenant_id, pipeline_id)


class Records:
    def __init__(self, engine: AsyncEngine, outbox: Outbox) -> None:
        self._engine = engine
        self._outbox = outbox

    async def create(self, tenant_id: str, pipeline_id: str, data: JsonObject) -> Record:
        record_id = uuid4()
        now = utc_now()
        async with self._engine.begin() as connection:
            await _pipeline(connection, tenant_id, pipeline_id)
            await records.insert_record(connection, record_id, tenant_id, pipeline_id, data, now)
            event = RecordCreated(
                tenant_id=tenant_id, pipeline_id=pipeline_id, record_id=str(record_id), data=data
            )
            await self._publish(connection, event)
        self._outbox.wake()
        return Record(record_id, pipeline_id, data, created_at=now, updated_at=now)

    async def page(
        self,
        tenant_id: str,
        pipeline_id: str,
        *,
        limit: int,
        offset: int,
        text: str | None = None,
        cursor: str | None = None,
    ) -> Page:
        """The pipeline's records, newest first; from ``cursor`` (a page's ``next_cursor``) when given."""
        after = cursors.decode(cursor) if cursor is not None else None
        async with self._engine.connect() as connection:
            await _pipeline(connection, tenant_id, pipeline_id)
            return await records.records_page(
                connection, tenant_id, pipeline_id, limit=limit, offset=offset, text=text, after=after
            )

    async def get(self, tenant_id: str, pipeline_id: str, record_id: UUID) -> Row:
        async with self._engine.connect() as connection:
            return await _record(connection, tenant_id, pipeline_id, record_id)

    async def change(
        self, tenant_id: str, pipeline_id: str, record_id: UUID, data: JsonObject, *, merge: bool
    ) -> Record:
        """Merge ``data`` into the record's (top-level keys), or replace the record's with it."""
        now = utc_now()
        async with self._engine.begin() as connection:
            old = await _record(connection, tenant_id, pipeline_id, record_id, for_update=True)
            new_data = changed_data(old.data, data, merge=merge)
            await records.update_record(connection, record_id, new_data, now)
            event = RecordUpdated(
                tenant_id=tenant_id,
                pipeline_id=pipeline_id,
                record_id=str(record_id),
                data=new_data,
                old_data=old.data,
            )
            await self._publish(connection, event)
        self._outbox.wake()
        return Record(record_id, pipeline_id, new_data, created_at=old.created_at, updated_at=now)

    async def delete(self, tenant_id: str, pipeline_id: str, record_id: UUID) -> None:
        async with self._engine.begin() as connection:
            old = await _record(connection, tenant_id, pipeline_id, record_id, for_update=True)
            await records.delete_record(connection, record_id)
            event = RecordDeleted(
                tenant_id=tenant_id, pipeline_id=pipeline_id, record_id=str(record_id), old_data=old.data
            )
            await self._publish(connection, event)
        self._outbox.wake()

    async def _publish(self, connection: AsyncConnection, event: RecordEvent) -> None:
        await self._outbox.add(connection, Outgoing(RECORDS_EVENTS, event.record_id, event))


async def _pipeline(connection: AsyncConnection, tenant_id: str, pipeline_id: str) -> Row:
    row = await records.pipeline(connection, tenant_id, pipeline_id)
    if row is None:
        raise NotFound("pipeline")
    return row


async def _record(
    connection: AsyncConnection,
    tenant_id: str,
    pipeline_id: str,
    record_id: UUID,
    *,
    for_update: bool = False,
) -> Row:
    row = await records.record(connection, tenant_id, pipeline_id, record_id, for_update=for_update)
    if row is None:
        raise NotFound("record")
    return row
