"""Workflows: create (version 1), read, activate a version."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_common.messages.envelope import utc_now
from millrace_common.tables import active_triggers, workflow_versions, workflows
from millrace_common.workflow import WorkflowDefinition

from millrace_gateway.adapters.trigger_index import ANY_PIPELINE, RECORD_TRIGGER_KINDS
from millrace_gateway.api.deps import EngineDep, TenantDep
from millrace_gateway.api.errors import ApiError, not_found

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


class CreateWorkflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    definition: WorkflowDefinition


class ActivateWorkflow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, description="Defaults to the newest version")


class WorkflowOut(BaseModel):
    id: UUID
    name: str
    status: str
    latest_version: int
    active_version: int | None
    created_at: datetime
    updated_at: datetime
    definition: WorkflowDefinition


@router.post("", status_code=201, response_model=WorkflowOut)
async def create_workflow(body: CreateWorkflow, tenant: TenantDep, engine: EngineDep) -> WorkflowOut:
    workflow_id = uuid4()
    now = utc_now()
    async with engine.begin() as connection:
        await connection.execute(
            insert(workflows).values(
                id=workflow_id,
                tenant_id=tenant,
                name=body.name,
                status="draft",
                latest_version=1,
                active_version=None,
                created_at=now,
                updated_at=now,
            )
        )
        await connection.execute(
            insert(workflow_versions).values(
                workflow_id=workflow_id,
                version=1,
                tenant_id=tenant,
                definition=body.definition.model_dump(mode="json", by_alias=True),
                created_at=now,
            )
        )
        return await _load(connection, tenant, workflow_id)


@router.get("/{workflow_id}", response_model=WorkflowOut)
async def get_workflow(workflow_id: UUID, tenant: TenantDep, engine: EngineDep) -> WorkflowOut:
    async with engine.connect() as connection:
        return await _load(connection, tenant, workflow_id)


@router.post("/{workflow_id}/activate", response_model=WorkflowOut)
async def activate_workflow(
    workflow_id: UUID, body: ActivateWorkflow, tenant: TenantDep, engine: EngineDep
) -> WorkflowOut:
    async with engine.begin() as connection:
        current = await _load(connection, tenant, workflow_id, for_update=True)
        version = body.version or current.latest_version
        row = (
            await connection.execute(
                select(workflow_versions.c.definition).where(
                    workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.version == version
                )
            )
        ).first()
        if row is None:
            raise ApiError(
                422, "unknown_version", f"workflow has no version {version}", [{"pointer": "/version", "message": "no such version"}]
            )
        trigger = WorkflowDefinition.model_validate(row.definition).trigger.data
        await connection.execute(delete(active_triggers).where(active_triggers.c.workflow_id == workflow_id))
        if trigger.kind in RECORD_TRIGGER_KINDS:
            await connection.execute(
                insert(active_triggers),
                [
                    {
                        "workflow_id": workflow_id,
                        "tenant_id": tenant,
                        "trigger_kind": trigger.kind,
                        "pipeline_id": pipeline,
                        "workflow_version": version,
                    }
                    for pipeline in (trigger.pipeline_ids or (ANY_PIPELINE,))
                ],
            )
        await connection.execute(
            update(workflows)
            .where(workflows.c.id == workflow_id)
            .values(status="active", active_version=version, updated_at=utc_now())
        )
        return await _load(connection, tenant, workflow_id)


async def _load(connection: AsyncConnection, tenant: str, workflow_id: UUID, *, for_update: bool = False) -> WorkflowOut:
    query = (
        select(workflows, workflow_versions.c.definition)
        .join(
            workflow_versions,
            (workflow_versions.c.workflow_id == workflows.c.id)
            & (workflow_versions.c.version == workflows.c.latest_version),
        )
        .where(workflows.c.id == workflow_id, workflows.c.tenant_id == tenant)
    )
    if for_update:
        query = query.with_for_update(of=workflows)
    row = (await connection.execute(query)).first()
    if row is None:
        raise not_found("workflow")
    return WorkflowOut(
        id=row.id,
        name=row.name,
        status=row.status,
        latest_version=row.latest_version,
        active_version=row.active_version,
        created_at=row.created_at,
        updated_at=row.updated_at,
        definition=WorkflowDefinition.model_validate(row.definition),
    )
