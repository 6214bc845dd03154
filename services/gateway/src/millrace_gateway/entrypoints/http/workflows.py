"""Workflows: immutable versions, validation, activation, manual runs, webhook address."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Body, Header, Path, Query
from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import Row

from millrace_gateway.domain.workflows import DESCRIPTION_LIMIT, NAME_LIMIT, Status
from millrace_gateway.entrypoints.http.deps import (
    Reader,
    RunStarter,
    SettingsDep,
    WorkflowEditor,
    WorkflowsDep,
)

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])


class WorkflowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_LIMIT)
    description: str | None = Field(
        default=None,
        max_length=DESCRIPTION_LIMIT,
        description="What the workflow is for; absent keeps the description (empty when created)",
    )
    definition: dict[str, JsonValue] = Field(description="React Flow JSON: nodes, edges, settings")


class ValidateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    definition: dict[str, JsonValue]


class ActivateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(default=None, ge=1, description="Defaults to the newest version")


class ManualRunBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: JsonObject = Field(
        default_factory=dict,
        description='Visible to templates at the top of trigger: {"customer": ...} is trigger.customer',
    )
    version: int | None = Field(
        default=None, ge=1, description="Defaults to the active, else the newest version"
    )


class Problem(BaseModel):
    pointer: str
    message: str


class ValidationOut(BaseModel):
    valid: bool
    problems: list[Problem]


class WorkflowSummary(BaseModel):
    id: UUID
    name: str
    description: str
    created_by: UUID | None = Field(description="The user or API key that created the workflow")
    created_by_name: str | None = Field(description="Its email, or ``API key <name>``")
    updated_by: UUID | None = Field(description="The user or API key that saved the newest version")
    updated_by_name: str | None
    status: Status
    latest_version: int
    active_version: int | None
    trigger_type: str | None = Field(description="The trigger node's kind")
    trigger_kind: str | None = Field(description="The same as trigger_type (kept for earlier callers)")
    created_at: datetime
    updated_at: datetime
    run_count: int
    success_rate: float | None = Field(description="Completed runs / finished runs; null before any finished")
    last_run_at: datetime | None
    last_run_status: str | None


class ScheduleOut(BaseModel):
    name: str
    kind: Literal["cron", "interval"]
    cron: str | None
    every: int | None
    unit: str | None
    timezone: str
    missed_slot_policy: str
    last_slot_at: datetime | None = Field(description="The latest slot handled (fired, or missed)")
    next_slot_at: datetime | None = Field(description="The next slot, while the workflow is active")
    run_count: int = Field(description="The runs its slots started")


class WorkflowOut(WorkflowSummary):
    definition: WorkflowDefinition
    schedules: list[ScheduleOut] | None = Field(
        default=None,
        description="GET /workflows/{id} of a scheduled workflow: each schedule and where it stands",
    )


class WorkflowPage(BaseModel):
    items: list[WorkflowSummary]
    next_offset: int | None


class VersionOut(BaseModel):
    version: int
    created_at: datetime
    active: bool
    definition: WorkflowDefinition | None = None


class RunAccepted(BaseModel):
    run_id: UUID
    workflow_version: int


class WebhookOut(BaseModel):
    url: str
    method: str = "POST"


@router.post("/validate", response_model=ValidationOut)
async def validate_workflow(body: ValidateBody, _: Reader, workflows: WorkflowsDep) -> ValidationOut:
    """Every problem of a definition at once, each with a JSON pointer; nothing is saved."""
    report = workflows.validate(body.definition)
    return ValidationOut(
        valid=report.definition is not None,
        problems=[Problem(pointer=p.pointer, message=p.message) for p in report.problems],
    )


@router.post("", status_code=201, response_model=WorkflowOut)
async def create_workflow(body: WorkflowBody, editor: WorkflowEditor, workflows: WorkflowsDep) -> WorkflowOut:
    created = await workflows.create(
        editor.tenant_id, body.name, body.definition, description=body.description or "", by=editor.subject
    )
    return _workflow(created)


@router.get("", response_model=WorkflowPage)
async def list_workflows(
    reader: Reader,
    workflows: WorkflowsDep,
    status: Status | None = None,
    name: Annotated[str | None, Query(max_length=200, description="Part of the name, any case")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkflowPage:
    page = await workflows.page(reader.tenant_id, status=status, name=name, limit=limit, offset=offset)
    return WorkflowPage(items=[_summary(row) for row in page.items], next_offset=page.next_offset)


@router.get("/{workflow_id}", response_model=WorkflowOut)
async def get_workflow(workflow_id: UUID, reader: Reader, workflows: WorkflowsDep) -> WorkflowOut:
    """The workflow with its newest definition and, for a scheduled one, its schedules."""
    row, schedules = await workflows.get_with_schedules(reader.tenant_id, workflow_id)
    found = _workflow(row)
    if schedules:
        found.schedules = [ScheduleOut(**vars(schedule)) for schedule in schedules]
    return found


@router.put(
    "/{workflow_id}", response_model=WorkflowOut, responses=declared(conflict="the workflow is archived")
)
async def update_workflow(
    workflow_id: UUID, body: WorkflowBody, editor: WorkflowEditor, workflows: WorkflowsDep
) -> WorkflowOut:
    """Save a new version (n+1); earlier versions stay as they were, and the active one stays active."""
    updated = await workflows.update(
        editor.tenant_id,
        workflow_id,
        body.name,
        body.definition,
        description=body.description,
        by=editor.subject,
    )
    return _workflow(updated)


@router.get("/{workflow_id}/versions", response_model=list[VersionOut])
async def list_versions(workflow_id: UUID, reader: Reader, workflows: WorkflowsDep) -> list[VersionOut]:
    active, rows = await workflows.versions(reader.tenant_id, workflow_id)
    return [VersionOut(version=r.version, created_at=r.created_at, active=r.version == active) for r in rows]


@router.get("/{workflow_id}/versions/{version}", response_model=VersionOut)
async def get_version(
    workflow_id: UUID,
    version: Annotated[int, Path(ge=1, le=2**31 - 1)],
    reader: Reader,
    workflows: WorkflowsDep,
) -> VersionOut:
    active, row = await workflows.version(reader.tenant_id, workflow_id, version)
    return VersionOut(
        version=row.version,
        created_at=row.created_at,
        active=row.version == active,
        definition=WorkflowDefinition.model_validate(row.definition),
    )


@router.post(
    "/{workflow_id}/activate",
    response_model=WorkflowOut,
    responses=declared(conflict="the workflow is archived"),
)
async def activate_workflow(
    workflow_id: UUID,
    editor: WorkflowEditor,
    workflows: WorkflowsDep,
    body: Annotated[ActivateBody | None, Body()] = None,
) -> WorkflowOut:
    """Pin a version (without a body: the newest) as the one triggers start; the trigger index changes in
    the same transaction. Activating an older version is how a change is rolled back."""
    version = body.version if body else None
    return _workflow(await workflows.activate(editor.tenant_id, workflow_id, version))


@router.post("/{workflow_id}/duplicate", status_code=201, response_model=WorkflowOut)
async def duplicate_workflow(
    workflow_id: UUID, editor: WorkflowEditor, workflows: WorkflowsDep
) -> WorkflowOut:
    """A new draft named "<name> (copy)" whose version 1 is the source's newest definition."""
    return _workflow(await workflows.duplicate(editor.tenant_id, workflow_id, by=editor.subject))


@router.post("/{workflow_id}/pause", response_model=WorkflowOut)
async def pause_workflow(workflow_id: UUID, editor: WorkflowEditor, workflows: WorkflowsDep) -> WorkflowOut:
    """Stop triggers from starting runs; runs in flight go on."""
    return _workflow(await workflows.pause(editor.tenant_id, workflow_id))


@router.post("/{workflow_id}/archive", response_model=WorkflowOut)
async def archive_workflow(workflow_id: UUID, editor: WorkflowEditor, workflows: WorkflowsDep) -> WorkflowOut:
    return _workflow(await workflows.archive(editor.tenant_id, workflow_id))


@router.post(
    "/{workflow_id}/runs",
    status_code=202,
    response_model=RunAccepted,
    responses=declared(conflict="the workflow is archived"),
)
async def start_manual_run(
    workflow_id: UUID,
    body: ManualRunBody,
    operator: RunStarter,
    workflows: WorkflowsDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunAccepted:
    """Ask for a run with the given input; the same ``Idempotency-Key`` asks for the same run."""
    run = await workflows.start_manual_run(
        operator.tenant_id,
        workflow_id,
        started_by=str(operator.subject),
        data=body.input,
        version=body.version,
        idempotency_key=idempotency_key,
    )
    return RunAccepted(run_id=run.run_id, workflow_version=run.workflow_version)


@router.get("/{workflow_id}/webhook", response_model=WebhookOut)
async def webhook_address(
    workflow_id: UUID, reader: Reader, workflows: WorkflowsDep, settings: SettingsDep
) -> WebhookOut:
    """The workflow's unguessable webhook address (its trigger must be a webhook trigger to use it)."""
    token = await workflows.webhook_token(reader.tenant_id, workflow_id)
    return WebhookOut(url=f"{settings.public_base_url.rstrip('/')}/hooks/{token}")


def _summary(row: Row) -> WorkflowSummary:
    return WorkflowSummary(
        id=row.id,
        name=row.name,
        description=row.description,
        created_by=row.created_by,
        created_by_name=row.created_by_name,
        updated_by=row.updated_by,
        updated_by_name=row.updated_by_name,
        status=row.status,
        latest_version=row.latest_version,
        active_version=row.active_version,
        trigger_type=row.trigger_type,
        trigger_kind=row.trigger_type,
        created_at=row.created_at,
        updated_at=row.updated_at,
        run_count=row.run_count,
        success_rate=(row.completed / row.finished) if row.finished else None,
        last_run_at=row.last_run_at,
        last_run_status=row.last_run_status,
    )


def _workflow(row: Row) -> WorkflowOut:
    summary = _summary(row)
    return WorkflowOut(**summary.model_dump(), definition=WorkflowDefinition.model_validate(row.definition))
