"""Records of a pipeline; every change is published on ``records.events`` through the outbox."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict
from sqlalchemy import insert

from millrace_common.messages.envelope import JsonObject, utc_now
from millrace_common.messages.records import RecordCreated
from millrace_common.outbox import Outgoing, enqueue
from millrace_common.tables import records
from millrace_common.topics import RECORDS_EVENTS

from millrace_gateway.settings import PRODUCER

from millrace_gateway.api.deps import EngineDep, NamespaceDep, RelayDep, TenantDep


router = APIRouter(prefix="/api/v1/pipelines", tags=["records"])

PipelineId = Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")


class CreateRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    data: JsonObject


class RecordOut(BaseModel):
    id: UUID
    pipeline_id: str
    data: JsonObject
    created_at: datetime
    updated_at: datetime


@router.post("/{pipeline_id}/records", status_code=201, response_model=RecordOut)
async def create_record(
    body: CreateRecord,
    tenant: TenantDep,
    engine: EngineDep,
    relay: RelayDep,
    namespace: NamespaceDep,
    pipeline_id: str = PipelineId,
) -> RecordOut:
    record_id = uuid4()
    now = utc_now()
    event = RecordCreated(tenant_id=tenant, pipeline_id=pipeline_id, record_id=str(record_id), data=body.data)
    async with engine.begin() as connection:
        await connection.execute(
            insert(records).values(
                id=record_id, tenant_id=tenant, pipeline_id=pipeline_id, data=body.data, created_at=now, updated_at=now
            )
        )
        await enqueue(connection, namespace, PRODUCER, [Outgoing(RECORDS_EVENTS, str(record_id), event)])
    await relay.publish_pending()
    return RecordOut(id=record_id, pipeline_id=pipeline_id, data=body.data, created_at=now, updated_at=now)
