"""Runs: list, one run with its per-node log, cancel, retry from the failed nodes, re-run."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Path, Query
from fastapi.responses import StreamingResponse
from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.limits import MAX_PAYLOAD_BYTES, too_large
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import Row

from millrace_gateway.domain.runs import node_started_at
from millrace_gateway.entrypoints.http.deps import Reader, RunOperator, RunsDep
from millrace_gateway.entrypoints.http.errors import ApiError

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
    parent_run_id: UUID | None = Field(
        default=None, description="The run whose sub_workflow node started this one, if one did"
    )
    parent_node_id: str | None = Field(default=None, description="That sub_workflow node's instance key")

    trigger_kind: str | None = Field(default=None, description="manual, webhook, schedule, record, ...")

    @classmethod
    def of(cls, row: Row) -> RunSummary:
        trigger = row.trigger if isinstance(row.trigger, dict) else {}
        return cls.model_validate({**row._mapping, "trigger_kind": trigger.get("kind")})


class ChildRunOut(BaseModel):
    run_id: UUID
    workflow_id: UUID
    status: str
    parent_node_id: str | None
    started_at: datetime


class RunOut(RunSummary):
    trigger: JsonValue
    final_output: JsonValue = Field(
        default=None,
        description="A completed run's output: that of its top-level end node that finished last; "
        "null while the run is not completed, or when no end node ran",
    )
    nodes: list[NodeExecutionOut]
    children: list[ChildRunOut] = Field(
        default_factory=list,
        description="The runs this run's sub_workflow nodes started, oldest first (at most 200; "
        "GET /api/v1/runs?parent_run_id= lists them all)",
    )
    rerun_of: UUID | None = Field(default=None, description="The run this one re-ran, if it is a re-run")
    reruns: list[UUID] = Field(default_factory=list, description="The re-runs of this run, oldest first")


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


class RerunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: JsonObject | None = Field(
        default=None, description="The trigger data for the new run; absent, the original run's"
    )
    version: int | None = Field(default=None, ge=1, description="Defaults to the original run's version")


class RerunAccepted(BaseModel):
    run_id: UUID
    workflow_version: int
    rerun_of: UUID


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
    parent_run_id: Annotated[
        UUID | None, Query(description="Only the runs this run's sub_workflow nodes started")
    ] = None,
    cursor: Annotated[
        str | None, Query(min_length=1, max_length=500, description="A page's next_cursor; overrides offset")
    ] = None,
) -> RunPage:
    """The tenant's runs, newest first (by when the trigger received what started them)."""
    page = await runs.page(
        reader.tenant_id,
        parent_run_id=parent_run_id,
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
    run, nodes, links = await runs.get(reader.tenant_id, run_id)
    children = await runs.children(reader.tenant_id, run_id)
    return RunOut(
        children=[ChildRunOut.model_validate(row, from_attributes=True) for row in children],
        **RunSummary.of(run).model_dump(),
        trigger=run.trigger,
        final_output=run.final_output,
        nodes=[
            NodeExecutionOut(
                **row._mapping, started_at=node_started_at(row.scheduled_at, row.finished_at, row.duration_ms)
            )
            for row in nodes
        ],
        rerun_of=links.rerun_of,
        reruns=links.reruns,
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


@router.post(
    "/{run_id}/signals/{name}",
    status_code=202,
    response_model=CommandAccepted,
    responses=declared(conflict="the run has finished: no node of it waits any more"),
)
async def signal_run(
    run_id: UUID,
    name: Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")],
    operator: RunOperator,
    runs: RunsDep,
    payload: Annotated[JsonValue, Body(description="Any JSON: the waiting node's output.payload")] = None,
) -> CommandAccepted:
    """Send the run the signal ``name`` with a JSON body: every ``wait_for_event`` node waiting for it
    resumes with the body as its output's ``payload``; when none waits, it is kept for a node that
    accepts earlier events, or else passed over. 409 once the run has finished."""
    size = too_large(payload)
    if size is not None:
        detail = f"the signal's body is {size:,} bytes of JSON; the limit is {MAX_PAYLOAD_BYTES:,}"
        raise ApiError(422, "invalid_body", detail, [{"pointer": "/body", "detail": detail}])
    await runs.signal(operator.tenant_id, run_id, name, payload, sent_by=str(operator.subject))
    return CommandAccepted(run_id=run_id, accepted=f"signal:{name}")


@router.post(
    "/{run_id}/rerun",
    status_code=202,
    response_model=RerunAccepted,
    responses=declared(conflict="the run has not finished, or its workflow is archived"),
)
async def rerun(
    run_id: UUID,
    operator: RunOperator,
    runs: RunsDep,
    body: Annotated[RerunBody | None, Body()] = None,
) -> RerunAccepted:
    """Start a new run of a finished run's workflow from its trigger data (or ``input`` in its place),
    linked to it: the new run's ``rerun_of`` names it, and it lists the new run under ``reruns``."""
    chosen = body or RerunBody()
    new_run, version = await runs.rerun(
        operator.tenant_id,
        run_id,
        data=chosen.input,
        version=chosen.version,
        requested_by=str(operator.subject),
    )
    return RerunAccepted(run_id=new_run, workflow_version=version, rerun_of=run_id)
