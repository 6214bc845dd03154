"""Pipelines and their records. Every record change is published on ``records.events`` (with the old
and the new data) through the outbox, in the transaction that makes the change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

from fastapi import APIRouter, Path, Query
from millrace_common.messages.envelope import JsonObject, utc_now
from millrace_common.messages.records import RecordCreated, RecordDeleted, RecordEvent, RecordUpdated
from millrace_common.outbox import Outgoing, enqueue
from millrace_common.problems import declared
from millrace_common.tables import pipelines, records
from millrace_common.topics import RECORDS_EVENTS, Namespace
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.entrypoints.http.deps import (
    EngineDep,
    NamespaceDep,
    Reader,
    RecordEditor,
    RelayDep,
    WorkflowEditor,
)
from millrace_gateway.entrypoints.http.errors import ApiError, not_found
from millrace_gateway.settings import PRODUCER

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines and records"])

PipelineId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


class CreatePipeline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = Field(min_length=1, max_length=200)


class RenamePipeline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class PipelineOut(BaseModel):
    id: str
    name: str
    created_at: datetime
    record_count: int = 0


class RecordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: JsonObject


class RecordOut(BaseModel):
    id: UUID
    pipeline_id: str
    data: JsonObject
    created_at: datetime
    updated_at: datetime


class RecordPage(BaseModel):
    items: list[RecordOut]
    next_offset: int | None


@router.post(
    "",
    status_code=201,
    response_model=PipelineOut,
    responses=declared(conflict="a pipeline with this id exists"),
)
async def create_pipeline(body: CreatePipeline, editor: WorkflowEditor, engine: EngineDep) -> PipelineOut:
    now = utc_now()
    try:
        async with engine.begin() as connection:
            await connection.execute(
                insert(pipelines).values(
                    tenant_id=editor.tenant_id, id=body.id, name=body.name, created_at=now
                )
            )
    except IntegrityError as error:
        raise ApiError(
            409, "conflict", f"pipeline {body.id!r} exists", [{"pointer": "/body/id", "detail": "taken"}]
        ) from error
    return PipelineOut(id=body.id, name=body.name, created_at=now)


@router.get("", response_model=list[PipelineOut])
async def list_pipelines(reader: Reader, engine: EngineDep) -> list[PipelineOut]:
    counts = (
        select(records.c.pipeline_id, func.count().label("n"))
        .where(records.c.tenant_id == reader.tenant_id)
        .group_by(records.c.pipeline_id)
        .subquery()
    )
    query = (
        select(pipelines, func.coalesce(counts.c.n, 0).label("record_count"))
        .outerjoin(counts, counts.c.pipeline_id == pipelines.c.id)
        .where(pipelines.c.tenant_id == reader.tenant_id)
        .order_by(pipelines.c.id)
    )
    async with engine.connect() as connection:
        return [
            PipelineOut.model_validate(row, from_attributes=True) for row in await connection.execute(query)
        ]


@router.get("/{pipeline_id}", response_model=PipelineOut)
async def get_pipeline(pipeline_id: PipelineId, reader: Reader, engine: EngineDep) -> PipelineOut:
    async with engine.connect() as connection:
        row = await _pipeline(connection, reader.tenant_id, pipeline_id)
        count = (
            await connection.execute(
                select(func.count()).where(
                    records.c.tenant_id == reader.tenant_id, records.c.pipeline_id == pipeline_id
                )
            )
        ).scalar_one()
    return PipelineOut(id=row.id, name=row.name, created_at=row.created_at, record_count=count)


@router.patch("/{pipeline_id}", response_model=PipelineOut)
async def rename_pipeline(
    pipeline_id: PipelineId, body: RenamePipeline, editor: WorkflowEditor, engine: EngineDep
) -> PipelineOut:
    async with engine.begin() as connection:
        await _pipeline(connection, editor.tenant_id, pipeline_id)
        await connection.execute(
            update(pipelines)
            .where(pipelines.c.tenant_id == editor.tenant_id, pipelines.c.id == pipeline_id)
            .values(name=body.name)
        )
    return await get_pipeline(pipeline_id, editor, engine)


@router.delete(
    "/{pipeline_id}", status_code=204, responses=declared(conflict="the pipeline still has records")
)
async def delete_pipeline(pipeline_id: PipelineId, editor: WorkflowEditor, engine: EngineDep) -> None:
    """Only an empty pipeline can be deleted; delete its records first (each emits its event)."""
    async with engine.begin() as connection:
        await _pipeline(connection, editor.tenant_id, pipeline_id)
        remaining = (
            await connection.execute(
                select(func.count()).where(
                    records.c.tenant_id == editor.tenant_id, records.c.pipeline_id == pipeline_id
                )
            )
        ).scalar_one()
        if remaining:
            raise ApiError(409, "not_empty", f"the pipeline still has {remaining} record(s)")
        await connection.execute(
            delete(pipelines).where(pipelines.c.tenant_id == editor.tenant_id, pipelines.c.id == pipeline_id)
        )


@router.post("/{pipeline_id}/records", status_code=201, response_model=RecordOut)
async def create_record(
    pipeline_id: PipelineId,
    body: RecordBody,
    editor: RecordEditor,
    engine: EngineDep,
    relay: RelayDep,
    namespace: NamespaceDep,
) -> RecordOut:
    record_id = uuid4()
    now = utc_now()
    async with engine.begin() as connection:
        await _pipeline(connection, editor.tenant_id, pipeline_id)
        await connection.execute(
            insert(records).values(
                id=record_id,
                tenant_id=editor.tenant_id,
                pipeline_id=pipeline_id,
                data=body.data,
                created_at=now,
                updated_at=now,
            )
        )
        event = RecordCreated(
            tenant_id=editor.tenant_id, pipeline_id=pipeline_id, record_id=str(record_id), data=body.data
        )
        await _publish(connection, namespace, event)
    relay.wake()  # the relay publishes in the background: no request waits for Kafka
    return RecordOut(id=record_id, pipeline_id=pipeline_id, data=body.data, created_at=now, updated_at=now)


@router.get("/{pipeline_id}/records", response_model=RecordPage)
async def list_records(
    pipeline_id: PipelineId, reader: Reader, engine: EngineDep, limit: Limit = 50, offset: Offset = 0
) -> RecordPage:
    async with engine.connect() as connection:
        await _pipeline(connection, reader.tenant_id, pipeline_id)
        rows = (
            await connection.execute(
                select(records)
                .where(records.c.tenant_id == reader.tenant_id, records.c.pipeline_id == pipeline_id)
                .order_by(records.c.created_at.desc(), records.c.id)
                .limit(limit + 1)
                .offset(offset)
            )
        ).all()
    return RecordPage(
        items=[RecordOut.model_validate(r, from_attributes=True) for r in rows[:limit]],
        next_offset=offset + limit if len(rows) > limit else None,
    )


@router.get("/{pipeline_id}/records/{record_id}", response_model=RecordOut)
async def get_record(
    pipeline_id: PipelineId, record_id: UUID, reader: Reader, engine: EngineDep
) -> RecordOut:
    async with engine.connect() as connection:
        return RecordOut.model_validate(
            await _record(connection, reader.tenant_id, pipeline_id, record_id), from_attributes=True
        )


@router.patch("/{pipeline_id}/records/{record_id}", response_model=RecordOut)
async def merge_record(
    pipeline_id: PipelineId,
    record_id: UUID,
    body: RecordBody,
    editor: RecordEditor,
    engine: EngineDep,
    relay: RelayDep,
    namespace: NamespaceDep,
) -> RecordOut:
    """Merge the given fields into the record (top-level keys; ``null`` sets a field to null)."""
    return await _change(
        engine, relay, namespace, editor.tenant_id, pipeline_id, record_id, body.data, merge=True
    )


@router.put("/{pipeline_id}/records/{record_id}", response_model=RecordOut)
async def replace_record(
    pipeline_id: PipelineId,
    record_id: UUID,
    body: RecordBody,
    editor: RecordEditor,
    engine: EngineDep,
    relay: RelayDep,
    namespace: NamespaceDep,
) -> RecordOut:
    return await _change(
        engine, relay, namespace, editor.tenant_id, pipeline_id, record_id, body.data, merge=False
    )


@router.delete("/{pipeline_id}/records/{record_id}", status_code=204)
async def delete_record(
    pipeline_id: PipelineId,
    record_id: UUID,
    editor: RecordEditor,
    engine: EngineDep,
    relay: RelayDep,
    namespace: NamespaceDep,
) -> None:
    async with engine.begin() as connection:
        old = await _record(connection, editor.tenant_id, pipeline_id, record_id, for_update=True)
        await connection.execute(delete(records).where(records.c.id == record_id))
        event = RecordDeleted(
            tenant_id=editor.tenant_id, pipeline_id=pipeline_id, record_id=str(record_id), old_data=old.data
        )
        await _publish(connection, namespace, event)
    relay.wake()  # the relay publishes in the background: no request waits for Kafka


async def _change(
    engine: EngineDep,
    relay: RelayDep,
    namespace: Namespace,
    tenant_id: str,
    pipeline_id: str,
    record_id: UUID,
    data: JsonObject,
    *,
    merge: bool,
) -> RecordOut:
    now = utc_now()
    async with engine.begin() as connection:
        old = await _record(connection, tenant_id, pipeline_id, record_id, for_update=True)
        new_data = {**old.data, **data} if merge else data
        await connection.execute(
            update(records).where(records.c.id == record_id).values(data=new_data, updated_at=now)
        )
        event = RecordUpdated(
            tenant_id=tenant_id,
            pipeline_id=pipeline_id,
            record_id=str(record_id),
            data=new_data,
            old_data=old.data,
        )
        await _publish(connection, namespace, event)
    relay.wake()  # the relay publishes in the background: no request waits for Kafka
    return RecordOut(
        id=record_id, pipeline_id=pipeline_id, data=new_data, created_at=old.created_at, updated_at=now
    )


async def _publish(connection: AsyncConnection, namespace: Namespace, event: RecordEvent) -> None:
    await enqueue(connection, namespace, PRODUCER, [Outgoing(RECORDS_EVENTS, event.record_id, event)])


async def _pipeline(connection: AsyncConnection, tenant_id: str, pipeline_id: str):
    row = (
        await connection.execute(
            select(pipelines).where(pipelines.c.tenant_id == tenant_id, pipelines.c.id == pipeline_id)
        )
    ).first()
    if row is None:
        raise not_found("pipeline")
    return row


async def _record(
    connection: AsyncConnection,
    tenant_id: str,
    pipeline_id: str,
    record_id: UUID,
    *,
    for_update: bool = False,
):
    query = select(records).where(
        records.c.id == record_id, records.c.tenant_id == tenant_id, records.c.pipeline_id == pipeline_id
    )
    row = (await connection.execute(query.with_for_update() if for_update else query)).first()
    if row is None:
        raise not_found("record")
    return row
