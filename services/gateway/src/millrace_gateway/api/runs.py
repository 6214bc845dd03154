"""Runs: one run with its per-node log."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, JsonValue
from sqlalchemy import func, select

from millrace_common.tables import node_executions, runs

from millrace_gateway.api.deps import EngineDep, TenantDep
from millrace_gateway.api.errors import not_found

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])


class NodeExecutionOut(BaseModel):
    node_id: str
    node_type: str
    status: str
    attempts: int
    input: JsonValue
    output: JsonValue
    error: JsonValue
    scheduled_at: datetime | None
    finished_at: datetime | None
    duration_ms: float | None


class RunSummary(BaseModel):
    run_id: UUID
    workflow_id: UUID
    workflow_version: int
    status: str
    error: str | None
    started_at: datetime
    finished_at: datetime | None


class RunOut(BaseModel):
    run_id: UUID
    workflow_id: UUID
    workflow_version: int
    status: str
    trigger: JsonValue
    error: str | None
    started_at: datetime
    finished_at: datetime | None
    nodes: list[NodeExecutionOut]


@router.get("", response_model=list[RunSummary])
async def list_runs(
    tenant: TenantDep,
    engine: EngineDep,
    workflow_id: UUID | None = None,
    status: str | None = Query(default=None, pattern="^(running|completed|failed)$"),
    limit: int = Query(default=50, ge=1, le=500),
) -> list[RunSummary]:
    """The tenant's runs, newest first."""
    query = select(runs).where(runs.c.tenant_id == tenant).order_by(runs.c.started_at.desc()).limit(limit)
    if workflow_id is not None:
        query = query.where(runs.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(runs.c.status == status)
    async with engine.connect() as connection:
        return [RunSummary.model_validate(row, from_attributes=True) for row in await connection.execute(query)]


@router.get("/{run_id}", response_model=RunOut)
async def get_run(run_id: UUID, tenant: TenantDep, engine: EngineDep) -> RunOut:
    async with engine.connect() as connection:
        run = (
            await connection.execute(select(runs).where(runs.c.run_id == run_id, runs.c.tenant_id == tenant))
        ).first()
        if run is None:
            raise not_found("run")
        nodes = await connection.execute(
            select(node_executions)
            .where(node_executions.c.run_id == run_id)
            .order_by(
                func.coalesce(node_executions.c.scheduled_at, node_executions.c.finished_at),
                node_executions.c.finished_at,
            )
        )
        return RunOut(
            run_id=run.run_id,
            workflow_id=run.workflow_id,
            workflow_version=run.workflow_version,
            status=run.status,
            trigger=run.trigger,
            error=run.error,
            started_at=run.started_at,
            finished_at=run.finished_at,
            nodes=[NodeExecutionOut.model_validate(row, from_attributes=True) for row in nodes],
        )
