"""Runs: list, one run with its per-node log, cancel, retry from the failed nodes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import Row

from millrace_gateway.domain.runs import node_started_at
from millrace_gateway.entrypoints.http.deps import Reader, RunOperator, RunsDep

router = APIRouter(prefix="/api/v1/runs", tags=["runs"])

RunStatus = Literal["running", "paused", "completed", "failed", "cancelled", "timed_out", "throttled"]


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
    started_at: datetime = Field(description="When the trigger received what started the run")
    finished_at: datetime | None
    trigger_kind: str | None = Field(default=None, description="manual, webhook, schedule, record, ...")

    @classmethod
    def of(cls, row: Row) -> RunSummary:
        trigger = row.trigger if isinstance(row.trigger, dict) else {}
        return cls.model_validate({**row._mapping, "trigger_kind": trigger.get("kind")})


class RunOut(RunSummary):
    trigger: JsonValue
    final_output: JsonValue = Field(
        default=None,
        description="A completed run's output: that of its top-level end node that finished last; "
        "null while the run is not completed, or when no end node ran",
    )
    nodes: list[NodeExecutionOut]


class RunPage(BaseModel):
    items: list[RunSummary]
    next_offset: int | None = Field(
        description="The offset of the next page; null on the last (and when paging by cursor)"
    )
    next_cursor: str | None = Field(
        default=None,
        description="Pass as ``cursor`` for the next page (stable while runs arrive); null on the last",
    )


class ContinueBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["retry", "skip"] = Field(
        description="retry: run the failed node again; skip: go on past it as if it succeeded with {}"
    )


class CommandAccepted(BaseModel):
    run_id: UUID
    accepted: str


@router.get("", response_model=RunPage)
async def list_runs(
    reader: Reader,
    runs: RunsDep,
    workflow_id: UUID | None = None,
    status: RunStatus | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
    trigger_kind: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="Text to find in the trigger's data")
    ] = None,
    record_id: Annotated[UUID | None, Query(description="Runs a change of this record started")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=500, description="A page's next_cursor; overrides offset")
    ] = None,
) -> RunPage:
    """The tenant's runs, newest first (by when the trigger received what started them)."""
    page = await runs.page(
        reader.tenant_id,
        workflow_id=workflow_id,
        status=status,
        started_after=started_after,
        started_before=started_before,
        trigger_kind=trigger_kind,
        text=q,
        record_id=record_id,
        limit=limit,
        offset=offset,
        cursor=cursor,
    )
    items = [RunSummary.of(row) for row in page.items]
    return RunPage(items=items, next_offset=page.next_offset, next_cursor=page.next_cursor)


@router.get("/{run_id}", response_model=RunOut)
async def get_run(run_id: UUID, reader: Reader, runs: RunsDep) -> RunOut:
    run, nodes = await runs.get(reader.tenant_id, run_id)
    return RunOut(
        **RunSummary.of(run).model_dump(),
        trigger=run.trigger,
        final_output=run.final_output,
        nodes=[
            NodeExecutionOut(
                **row._mapping, started_at=node_started_at(row.scheduled_at, row.finished_at, row.duration_ms)
            )
            for row in nodes
        ],
    )


@router.get(
    "/{run_id}/export",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}, "description": "one run event per line"}},
)
async def export_run(run_id: UUID, reader: Reader, runs: RunsDep) -> StreamingResponse:
    """The run's full event log as JSON Lines, in seq order, each line the event as it was published
    on ``runs.events``: folding them in order gives the run's state."""
    lines = await runs.export(reader.tenant_id, run_id)
    disposition = f'attachment; filename="run-{run_id}.jsonl"'
    return StreamingResponse(
        lines, media_type="application/x-ndjson", headers={"Content-Disposition": disposition}
    )


@router.post(
    "/{run_id}/cancel",
    status_code=202,
    response_model=CommandAccepted,
    responses=declared(conflict="the run is not in a state this applies to"),
)
async def cancel_run(run_id: UUID, operator: RunOperator, runs: RunsDep) -> CommandAccepted:
    """Ask the orchestrator to cancel a running run; results that arrive later are ignored."""
    await runs.cancel(operator.tenant_id, run_id, requested_by=str(operator.subject))
    return CommandAccepted(run_id=run_id, accepted="cancel")


@router.post(
    "/{run_id}/retry",
    status_code=202,
    response_model=CommandAccepted,
    responses=declared(conflict="the run is not in a state this applies to"),
)
async def retry_run(run_id: UUID, operator: RunOperator, runs: RunsDep) -> CommandAccepted:
    """Run a failed run again from its failed nodes; the outputs of nodes that succeeded are kept."""
    await runs.retry(operator.tenant_id, run_id, requested_by=str(operator.subject))
    return CommandAccepted(run_id=run_id, accepted="retry")


@router.post(
    "/{run_id}/continue",
    status_code=202,
    response_model=CommandAccepted,
    responses=declared(conflict="the run is not in a state this applies to"),
)
async def continue_run(
    run_id: UUID, body: ContinueBody, operator: RunOperator, runs: RunsDep
) -> CommandAccepted:
    """Let a run paused on a node's error (``on_error: pause``) go on: ``retry`` runs the node again,
    ``skip`` passes it over with an empty output. The owner's task for the pause is closed."""
    await runs.continue_paused(operator.tenant_id, run_id, body.action, requested_by=str(operator.subject))
    return CommandAccepted(run_id=run_id, accepted=body.action)
