"""Pipelines and their records. Every record change is published on ``records.events`` (with the old
and the new data) through the outbox, in the transaction that makes the change."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query
from millrace_common.contracts.json_values import JsonObject
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row

from millrace_gateway.domain.records import Pipeline, Record
from millrace_gateway.entrypoints.http.deps import (
    PipelinesDep,
    Reader,
    RecordEditor,
    RecordsDep,
    WorkflowEditor,
)

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
    next_offset: int | None = Field(description="The next page's offset; null on the last (or by cursor)")
    next_cursor: str | None = Field(default=None, description="Pass as ``cursor`` for the next page")


@router.post(
    "",
    status_code=201,
    response_model=PipelineOut,
    responses=declared(conflict="a pipeline with this id exists"),
)
async def create_pipeline(
    body: CreatePipeline, editor: WorkflowEditor, pipelines: PipelinesDep
) -> PipelineOut:
    return _pipeline(await pipelines.create(editor.tenant_id, body.id, body.name))


@router.get("", response_model=list[PipelineOut])
async def list_pipelines(reader: Reader, pipelines: PipelinesDep) -> list[PipelineOut]:
    return [_pipeline(pipeline) for pipeline in await pipelines.all(reader.tenant_id)]


@router.get("/{pipeline_id}", response_model=PipelineOut)
async def get_pipeline(pipeline_id: PipelineId, reader: Reader, pipelines: PipelinesDep) -> PipelineOut:
    return _pipeline(await pipelines.get(reader.tenant_id, pipeline_id))


@router.patch("/{pipeline_id}", response_model=PipelineOut)
async def rename_pipeline(
    pipeline_id: PipelineId, body: RenamePipeline, editor: WorkflowEditor, pipelines: PipelinesDep
) -> PipelineOut:
    return _pipeline(await pipelines.rename(editor.tenant_id, pipeline_id, body.name))


@router.delete(
    "/{pipeline_id}", status_code=204, responses=declared(conflict="the pipeline still has records")
)
async def delete_pipeline(pipeline_id: PipelineId, editor: WorkflowEditor, pipelines: PipelinesDep) -> None:
    """Only an empty pipeline can be deleted; delete its records first (each emits its event)."""
    await pipelines.delete(editor.tenant_id, pipeline_id)


@router.post("/{pipeline_id}/records", status_code=201, response_model=RecordOut)
async def create_record(
    pipeline_id: PipelineId, body: RecordBody, editor: RecordEditor, records: RecordsDep
) -> RecordOut:
    return _record(await records.create(editor.tenant_id, pipeline_id, body.data))


@router.get("/{pipeline_id}/records", response_model=RecordPage)
async def list_records(
    pipeline_id: PipelineId,
    reader: Reader,
    records: RecordsDep,
    limit: Limit = 50,
    offset: Offset = 0,
    q: Annotated[str | None, Query(min_length=1, max_length=200, description="Text in the data")] = None,
    cursor: Annotated[str | None, Query(min_length=1, max_length=500, description="A next_cursor")] = None,
) -> RecordPage:
    """The pipeline's records, newest first."""
    page = await records.page(
        reader.tenant_id, pipeline_id, limit=limit, offset=offset, text=q, cursor=cursor
    )
    return RecordPage(
        items=[_record(row) for row in page.items], next_offset=page.next_offset, next_cursor=page.next_cursor
    )


@router.get("/{pipeline_id}/records/{record_id}", response_model=RecordOut)
async def get_record(
    pipeline_id: PipelineId, record_id: UUID, reader: Reader, records: RecordsDep
) -> RecordOut:
    return _record(await records.get(reader.tenant_id, pipeline_id, record_id))


@router.patch("/{pipeline_id}/records/{record_id}", response_model=RecordOut)
async def merge_record(
    pipeline_id: PipelineId, record_id: UUID, body: RecordBody, editor: RecordEditor, records: RecordsDep
) -> RecordOut:
    """Merge the given fields into the record (top-level keys; ``null`` sets a field to null)."""
    return _record(await records.change(editor.tenant_id, pipeline_id, record_id, body.data, merge=True))


@router.put("/{pipeline_id}/records/{record_id}", response_model=RecordOut)
async def replace_record(
    pipeline_id: PipelineId, record_id: UUID, body: RecordBody, editor: RecordEditor, records: RecordsDep
) -> RecordOut:
    return _record(await records.change(editor.tenant_id, pipeline_id, record_id, body.data, merge=False))


@router.delete("/{pipeline_id}/records/{record_id}", status_code=204)
async def delete_record(
    pipeline_id: PipelineId, record_id: UUID, editor: RecordEditor, records: RecordsDep
) -> None:
    await records.delete(editor.tenant_id, pipeline_id, record_id)


def _pipeline(pipeline: Pipeline) -> PipelineOut:
    return PipelineOut.model_validate(pipeline, from_attributes=True)


def _record(record: Record | Row) -> RecordOut:
    return RecordOut.model_validate(record, from_attributes=True)
