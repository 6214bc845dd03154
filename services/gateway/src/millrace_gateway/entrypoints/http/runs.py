"""Runs: list, one run with its per-node log, cancel, retry from the failed nodes."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from millrace_common.messages.run_commands import CancelRun, RetryRun
from millrace_common.outbox import Outgoing, enqueue
from millrace_common.problems import declared
from millrace_common.tables import node_executions, runs
from millrace_common.topics import RUNS_COMMANDS
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.entrypoints.http.deps import EngineDep, NamespaceDep, Reader, RelayDep, RunOperator
from millrace_gateway.entrypoints.http.errors import ApiError, not_found
from millrace_gateway.settings import PRODUCER

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

RunStatus = Literal["running", "completed", "failed", "cancelled", "timed_out", "throttled"]


class NodeExecutionOut(BaseModel):
    node_id: str
    node_type: str
    status: str
    attempts: int
    input: JsonValue
    output: JsonValue
    error: JsonValue
    scheduled_at: datetime | None
    started_at: datetime | None = Field(
        description="When the latest attempt was scheduled; for nodes the orchestrator evaluates itself, "
        "when it finished less its duration"
    )
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


class RunOut(RunSummary):
    trigger: JsonValue
    nodes: list[NodeExecutionOut]


class RunPage(BaseModel):
    items: list[RunSummary]
    next_offset: int | None


class CommandAccepted(BaseModel):
    run_id: UUID
    accepted: str


@router.get("", response_model=RunPage)
async def list_runs(
    reader: Reader,
    engine: EngineDep,
    workflow_id: UUID | None = None,
    status: RunStatus | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RunPage:
    """The tenant's runs, newest first."""
    query = select(runs).where(runs.c.tenant_id == reader.tenant_id)
    if workflow_id is not None:
        query = query.where(runs.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(runs.c.status == status)
    if started_after is not None:
        query = query.where(runs.c.started_at >= started_after)
    if started_before is not None:
        query = query.where(runs.c.started_at < started_before)
    query = query.order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit + 1).offset(offset)
    async with engine.connect() as connection:
        rows = (await connection.execute(query)).all()
    items = [RunSummary.model_validate(row, from_attributes=True) for row in rows[:limit]]
    return RunPage(items=items, next_offset=offset + limit if len(rows) > limit else None)


@router.get("/{run_id}", response_model=RunOut)
async def get_run(run_id: UUID, reader: Reader, engine: EngineDep) -> RunOut:
    async with engine.connect() as connection:
        run = await _run(connection, reader.tenant_id, run_id)
        nodes = await connection.execute(
            select(node_executions)
            .where(node_executions.c.run_id == run_id)
            .order_by(
                func.coalesce(node_executions.c.scheduled_at, node_executions.c.finished_at),
                node_executions.c.finished_at,
            )
        )
        return RunOut(
            **RunSummary.model_validate(run, from_attributes=True).model_dump(),
            trigger=run.trigger,
            nodes=[NodeExecutionOut(**row._mapping, started_at=_started(row)) for row in nodes],
        )


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=CommandAccepted,
    responses=declared(conflict="the run is not in a state this applies to"),
)
async def cancel_run(
    run_id: UUID, operator: RunOperator, engine: EngineDep, relay: RelayDep, namespace: NamespaceDep
) -> CommandAccepted:
    """Ask the orchestrator to cancel a running run; results that arrive later are ignored."""
    command = CancelRun(
        tenant_id=operator.tenant_id, correlation_id=run_id, run_id=run_id, requested_by=str(operator.subject)
    )
    await _send(engine, relay, namespace, operator.tenant_id, run_id, command, allowed={"running"})
    return CommandAccepted(run_id=run_id, accepted="cancel")


@router.post(
    "/{run_id}/retry",
    status_code=202,
    response_model=CommandAccepted,
    responses=declared(conflict="the run is not in a state this applies to"),
)
async def retry_run(
    run_id: UUID, operator: RunOperator, engine: EngineDep, relay: RelayDep, namespace: NamespaceDep
) -> CommandAccepted:
    """Run a failed run again from its failed nodes; the outputs of nodes that succeeded are kept."""
    command = RetryRun(
        tenant_id=operator.tenant_id, correlation_id=run_id, run_id=run_id, requested_by=str(operator.subject)
    )
    await _send(engine, relay, namespace, operator.tenant_id, run_id, command, allowed={"failed"})
    return CommandAccepted(run_id=run_id, accepted="retry")


async def _send(
    engine: EngineDep,
    relay: RelayDep,
    namespace: NamespaceDep,
    tenant_id: str,
    run_id: UUID,
    command: CancelRun | RetryRun,
    *,
    allowed: set[str],
) -> None:
    async with engine.begin() as connection:
        run = await _run(connection, tenant_id, run_id)
        if run.status not in allowed:
            raise ApiError(
                409,
                "wrong_state",
                f"the run is {run.status}; this needs it to be {' or '.join(sorted(allowed))}",
            )
        await enqueue(connection, namespace, PRODUCER, [Outgoing(RUNS_COMMANDS, str(run_id), command)])
    relay.wake()  # the relay publishes in the background: no request waits for Kafka


def _started(row) -> datetime | None:
    if row.scheduled_at is not None:
        return row.scheduled_at
    if row.finished_at is not None and row.duration_ms is not None:
        return row.finished_at - timedelta(milliseconds=row.duration_ms)
    return None


async def _run(connection: AsyncConnection, tenant_id: str, run_id: UUID):
    row = (
        await connection.execute(select(runs).where(runs.c.run_id == run_id, runs.c.tenant_id == tenant_id))
    ).first()
    if row is None:
        raise not_found("run")
    return row
