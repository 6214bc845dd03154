"""Workflows: immutable versions, validation, activation, manual runs, webhook address."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Body, Header, Path, Query
from millrace_common.messages.envelope import JsonObject, utc_now
from millrace_common.messages.run_commands import StartRun, TriggerData
from millrace_common.outbox import Outgoing, enqueue
from millrace_common.problems import declared
from millrace_common.tables import active_triggers, runs, workflow_triggers, workflow_versions, workflows
from millrace_common.topics import RUNS_COMMANDS
from millrace_common.workflow import WorkflowDefinition
from millrace_common.workflow_validation import stored_size_problem, validate_definition
from pydantic import BaseModel, ConfigDict, Field, JsonValue
from sqlalchemy import and_, delete, func, insert, literal_column, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.adapters.trigger_index import ANY_PIPELINE
from millrace_gateway.domain.runs import manual_run_id
from millrace_gateway.entrypoints.http.deps import (
    EngineDep,
    NamespaceDep,
    Reader,
    RelayDep,
    RunOperator,
    SettingsDep,
    WorkflowEditor,
)
from millrace_gateway.entrypoints.http.errors import ApiError, not_found
from millrace_gateway.settings import PRODUCER

router = APIRouter(prefix="/api/v1/workflows", tags=["workflows"])

Status = Literal["draft", "active", "paused", "archived"]
FINISHED = ("completed", "failed", "cancelled", "timed_out")
COPY_SUFFIX = " (copy)"
NAME_LIMIT = 200


class WorkflowBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=NAME_LIMIT)
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


class WorkflowOut(WorkflowSummary):
    definition: WorkflowDefinition


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


def _checked(definition: dict[str, JsonValue], pointer_prefix: str = "/definition") -> WorkflowDefinition:
    report = validate_definition(definition)
    if report.definition is None:
        raise ApiError(
            422,
            "invalid_definition",
            f"the workflow definition has {len(report.problems)} problem(s)",
            [{"pointer": pointer_prefix + p.pointer, "detail": p.message} for p in report.problems],
        )
    return report.definition


def _dumped(definition: WorkflowDefinition) -> dict[str, object]:
    return definition.model_dump(mode="json", by_alias=True)


@router.post("/validate", response_model=ValidationOut)
async def validate_workflow(body: ValidateBody, _: Reader) -> ValidationOut:
    """Every problem of a definition at once, each with a JSON pointer; nothing is saved."""
    report = validate_definition(body.definition)
    return ValidationOut(
        valid=report.definition is not None,
        problems=[Problem(pointer=p.pointer, message=p.message) for p in report.problems],
    )


@router.post("", status_code=201, response_model=WorkflowOut)
async def create_workflow(body: WorkflowBody, editor: WorkflowEditor, engine: EngineDep) -> WorkflowOut:
    definition = _checked(body.definition)
    async with engine.begin() as connection:
        return await _new_draft(connection, editor.tenant_id, body.name, definition)


async def _new_draft(
    connection: AsyncConnection, tenant_id: str, name: str, definition: WorkflowDefinition
) -> WorkflowOut:
    """A new draft workflow whose version 1 is ``definition``."""
    workflow_id = uuid4()
    now = utc_now()
    await connection.execute(
        insert(workflows).values(
            id=workflow_id,
            tenant_id=tenant_id,
            name=name,
            status="draft",
            latest_version=1,
            active_version=None,
            webhook_token=secrets.token_urlsafe(24),
            created_at=now,
            updated_at=now,
        )
    )
    await _add_version(connection, tenant_id, workflow_id, 1, definition)
    return await _load(connection, tenant_id, workflow_id)


@router.get("", response_model=WorkflowPage)
async def list_workflows(
    reader: Reader,
    engine: EngineDep,
    status: Status | None = None,
    name: Annotated[str | None, Query(max_length=200, description="Part of the name, any case")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> WorkflowPage:
    query = _summary_query(reader.tenant_id).order_by(workflows.c.created_at.desc(), workflows.c.id)
    if status is not None:
        query = query.where(workflows.c.status == status)
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(workflows.c.name.ilike(f"%{escaped}%", escape="\\"))
    async with engine.connect() as connection:
        rows = (await connection.execute(query.limit(limit + 1).offset(offset))).all()
    items = [_summary(row) for row in rows[:limit]]
    return WorkflowPage(items=items, next_offset=offset + limit if len(rows) > limit else None)


@router.get("/{workflow_id}", response_model=WorkflowOut)
async def get_workflow(workflow_id: UUID, reader: Reader, engine: EngineDep) -> WorkflowOut:
    async with engine.connect() as connection:
        return await _load(connection, reader.tenant_id, workflow_id)


@router.put(
    "/{workflow_id}", response_model=WorkflowOut, responses=declared(conflict="the workflow is archived")
)
async def update_workflow(
    workflow_id: UUID, body: WorkflowBody, editor: WorkflowEditor, engine: EngineDep
) -> WorkflowOut:
    """Save a new version (n+1); earlier versions stay as they were, and the active one stays active."""
    definition = _checked(body.definition)
    async with engine.begin() as connection:
        current = await _locked(connection, editor.tenant_id, workflow_id)
        if current.status == "archived":
            raise ApiError(409, "archived", "an archived workflow cannot be changed")
        version = current.latest_version + 1
        await _add_version(connection, editor.tenant_id, workflow_id, version, definition)
        await connection.execute(
            update(workflows)
            .where(workflows.c.id == workflow_id)
            .values(name=body.name, latest_version=version, updated_at=utc_now())
        )
        return await _load(connection, editor.tenant_id, workflow_id)


@router.get("/{workflow_id}/versions", response_model=list[VersionOut])
async def list_versions(workflow_id: UUID, reader: Reader, engine: EngineDep) -> list[VersionOut]:
    async with engine.connect() as connection:
        current = await _load(connection, reader.tenant_id, workflow_id)
        rows = await connection.execute(
            select(workflow_versions.c.version, workflow_versions.c.created_at)
            .where(workflow_versions.c.workflow_id == workflow_id)
            .order_by(workflow_versions.c.version.desc())
        )
        return [
            VersionOut(version=r.version, created_at=r.created_at, active=r.version == current.active_version)
            for r in rows
        ]


@router.get("/{workflow_id}/versions/{version}", response_model=VersionOut)
async def get_version(
    workflow_id: UUID, version: Annotated[int, Path(ge=1, le=2**31 - 1)], reader: Reader, engine: EngineDep
) -> VersionOut:
    async with engine.connect() as connection:
        current = await _load(connection, reader.tenant_id, workflow_id)
        row = (
            await connection.execute(
                select(workflow_versions).where(
                    workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.version == version
                )
            )
        ).first()
    if row is None:
        raise not_found("workflow version")
    return VersionOut(
        version=row.version,
        created_at=row.created_at,
        active=row.version == current.active_version,
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
    engine: EngineDep,
    body: Annotated[ActivateBody | None, Body()] = None,
) -> WorkflowOut:
    """Pin a version (without a body: the newest) as the one triggers start; the trigger index changes in
    the same transaction. Activating an older version is how a change is rolled back."""
    async with engine.begin() as connection:
        current = await _locked(connection, editor.tenant_id, workflow_id)
        if current.status == "archived":
            raise ApiError(409, "archived", "an archived workflow cannot be activated")
        version = (body.version if body else None) or current.latest_version
        definition = await _version(connection, workflow_id, version, pointer="/body/version", status=404)
        await _clear_trigger_index(connection, workflow_id)
        index_rows, trigger_row = trigger_index_rows(
            editor.tenant_id, workflow_id, version, definition, utc_now()
        )
        if index_rows:
            await connection.execute(insert(active_triggers), index_rows)
        if trigger_row is not None:
            await connection.execute(insert(workflow_triggers), [trigger_row])
        await _set_status(connection, workflow_id, "active", active_version=version)
        return await _load(connection, editor.tenant_id, workflow_id)


@router.post("/{workflow_id}/duplicate", status_code=201, response_model=WorkflowOut)
async def duplicate_workflow(workflow_id: UUID, editor: WorkflowEditor, engine: EngineDep) -> WorkflowOut:
    """A new draft named "<name> (copy)" whose version 1 is the source's newest definition."""
    async with engine.begin() as connection:
        source = await _locked(connection, editor.tenant_id, workflow_id)
        definition = await _version(
            connection, workflow_id, source.latest_version, pointer="/path/workflow_id"
        )
        oversized = stored_size_problem(definition)  # stored before the limit was enforced on saving
        if oversized is not None:
            raise ApiError(
                422,
                "invalid_definition",
                f"the workflow's newest version cannot be copied: {oversized.message}",
                [{"pointer": "/path/workflow_id", "detail": oversized.message}],
            )
        name = source.name[: NAME_LIMIT - len(COPY_SUFFIX)] + COPY_SUFFIX
        return await _new_draft(connection, editor.tenant_id, name, definition)


@router.post("/{workflow_id}/pause", response_model=WorkflowOut)
async def pause_workflow(workflow_id: UUID, editor: WorkflowEditor, engine: EngineDep) -> WorkflowOut:
    """Stop triggers from starting runs; runs in flight go on."""
    return await _deactivate(engine, editor.tenant_id, workflow_id, "paused")


@router.post("/{workflow_id}/archive", response_model=WorkflowOut)
async def archive_workflow(workflow_id: UUID, editor: WorkflowEditor, engine: EngineDep) -> WorkflowOut:
    return await _deactivate(engine, editor.tenant_id, workflow_id, "archived")


@router.post(
    "/{workflow_id}/runs",
    status_code=202,
    response_model=RunAccepted,
    responses=declared(conflict="the workflow is archived"),
)
async def start_manual_run(
    workflow_id: UUID,
    body: ManualRunBody,
    operator: RunOperator,
    engine: EngineDep,
    relay: RelayDep,
    namespace: NamespaceDep,
    idempotency_key: Annotated[str | None, Header(max_length=200)] = None,
) -> RunAccepted:
    """Ask for a run with the given input; the same ``Idempotency-Key`` asks for the same run."""
    async with engine.begin() as connection:
        current = await _load(connection, operator.tenant_id, workflow_id)
        if current.status == "archived":
            raise ApiError(409, "archived", "an archived workflow cannot run")
        version = body.version or current.active_version or current.latest_version
        await _version(connection, workflow_id, version, pointer="/body/version", status=422)
        run_id = manual_run_id(workflow_id, idempotency_key) if idempotency_key else uuid4()
        command = StartRun(
            tenant_id=operator.tenant_id,
            correlation_id=run_id,
            run_id=run_id,
            workflow_id=workflow_id,
            workflow_version=version,
            trigger=TriggerData(kind="manual", data=body.input, started_by=str(operator.subject)),
            idempotency_key=f"manual:{idempotency_key or run_id}",
        )
        await enqueue(connection, namespace, PRODUCER, [Outgoing(RUNS_COMMANDS, str(run_id), command)])
    relay.wake()  # the relay publishes in the background: no request waits for Kafka
    return RunAccepted(run_id=run_id, workflow_version=version)


@router.get("/{workflow_id}/webhook", response_model=WebhookOut)
async def webhook_address(
    workflow_id: UUID, reader: Reader, engine: EngineDep, settings: SettingsDep
) -> WebhookOut:
    """The workflow's unguessable webhook address (its trigger must be a webhook trigger to use it)."""
    async with engine.connect() as connection:
        await _load(connection, reader.tenant_id, workflow_id)
        token = (
            await connection.execute(select(workflows.c.webhook_token).where(workflows.c.id == workflow_id))
        ).scalar_one()
    return WebhookOut(url=f"{settings.public_base_url.rstrip('/')}/hooks/{token}")


async def _deactivate(engine: EngineDep, tenant_id: str, workflow_id: UUID, status: Status) -> WorkflowOut:
    async with engine.begin() as connection:
        await _locked(connection, tenant_id, workflow_id)
        await _clear_trigger_index(connection, workflow_id)
        await _set_status(connection, workflow_id, status, active_version=None)
        return await _load(connection, tenant_id, workflow_id)


def trigger_index_rows(
    tenant_id: str, workflow_id: UUID, version: int, definition: WorkflowDefinition, activated_at: datetime
) -> tuple[list[dict[str, object]], dict[str, object] | None]:
    """What the trigger service needs of an activated version: index rows by (tenant, kind, pipeline),
    ``*`` for every pipeline (and for webhook and scheduled triggers), and the trigger's config with
    the workflow's hourly limit. Manual triggers are not indexed (runs start through the API)."""
    trigger = definition.trigger.data
    if trigger.kind == "manual":
        return [], None
    pipelines = trigger.pipeline_ids or (ANY_PIPELINE,)
    index_rows: list[dict[str, object]] = [
        {
            "workflow_id": workflow_id,
            "tenant_id": tenant_id,
            "trigger_kind": trigger.kind,
            "pipeline_id": pipeline,
            "workflow_version": version,
        }
        for pipeline in pipelines
    ]
    trigger_row: dict[str, object] = {
        "workflow_id": workflow_id,
        "tenant_id": tenant_id,
        "workflow_version": version,
        "trigger_kind": trigger.kind,
        "config": trigger.model_dump(mode="json", by_alias=True),
        "max_executions_per_hour": definition.settings.max_executions_per_hour,
        "activated_at": activated_at,
    }
    return index_rows, trigger_row


async def _clear_trigger_index(connection: AsyncConnection, workflow_id: UUID) -> None:
    await connection.execute(delete(active_triggers).where(active_triggers.c.workflow_id == workflow_id))
    await connection.execute(delete(workflow_triggers).where(workflow_triggers.c.workflow_id == workflow_id))


async def _set_status(
    connection: AsyncConnection, workflow_id: UUID, status: Status, *, active_version: int | None
) -> None:
    await connection.execute(
        update(workflows)
        .where(workflows.c.id == workflow_id)
        .values(status=status, active_version=active_version, updated_at=utc_now())
    )


async def _add_version(
    connection: AsyncConnection,
    tenant_id: str,
    workflow_id: UUID,
    version: int,
    definition: WorkflowDefinition,
) -> None:
    await connection.execute(
        insert(workflow_versions).values(
            workflow_id=workflow_id,
            version=version,
            tenant_id=tenant_id,
            definition=_dumped(definition),
            created_at=utc_now(),
        )
    )


async def _version(
    connection: AsyncConnection, workflow_id: UUID, version: int, *, pointer: str, status: int = 422
) -> WorkflowDefinition:
    row = (
        await connection.execute(
            select(workflow_versions.c.definition).where(
                workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.version == version
            )
        )
    ).first()
    if row is None:
        raise ApiError(
            status,
            "unknown_version",
            f"the workflow has no version {version}",
            [{"pointer": pointer, "detail": "no such version"}],
        )
    return WorkflowDefinition.model_validate(row.definition)


def _summary_query(tenant_id: str):
    """Workflows with their run statistics and trigger kind: one statement for a whole page."""
    stats = (
        select(
            func.count().label("run_count"),
            func.count().filter(runs.c.status == "completed").label("completed"),
            func.count().filter(runs.c.status.in_(FINISHED)).label("finished"),
        )
        .where(and_(runs.c.tenant_id == workflows.c.tenant_id, runs.c.workflow_id == workflows.c.id))
        .lateral("stats")
    )
    # The newest run comes from the runs_by_workflow index, not from sorting every run of the workflow.
    newest = (
        select(runs.c.started_at.label("last_run_at"), runs.c.status.label("last_run_status"))
        .where(and_(runs.c.tenant_id == workflows.c.tenant_id, runs.c.workflow_id == workflows.c.id))
        .order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
        .limit(1)
        .lateral("newest")
    )
    # The list needs only the trigger's kind, so the (possibly large) definitions stay in the database.
    trigger_type = func.jsonb_path_query_first(
        workflow_versions.c.definition,
        literal_column("""'$.nodes[*] ? (@.type == "trigger").data.kind'::jsonpath"""),
    ).op("#>>")(literal_column("'{}'::text[]"))
    return (
        select(
            workflows,
            trigger_type.label("trigger_type"),
            stats.c.run_count,
            stats.c.completed,
            stats.c.finished,
            newest.c.last_run_at,
            newest.c.last_run_status,
        )
        .join(
            workflow_versions,
            (workflow_versions.c.workflow_id == workflows.c.id)
            & (workflow_versions.c.version == workflows.c.latest_version),
        )
        .join(stats, true())
        .outerjoin(newest, true())
        .where(workflows.c.tenant_id == tenant_id)
    )


def _summary(row) -> WorkflowSummary:
    return WorkflowSummary(
        id=row.id,
        name=row.name,
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


async def _load(connection: AsyncConnection, tenant_id: str, workflow_id: UUID) -> WorkflowOut:
    query = (
        _summary_query(tenant_id)
        .add_columns(workflow_versions.c.definition)
        .where(workflows.c.id == workflow_id)
    )
    row = (await connection.execute(query)).first()
    if row is None:
        raise not_found("workflow")
    summary = _summary(row)
    return WorkflowOut(**summary.model_dump(), definition=WorkflowDefinition.model_validate(row.definition))


async def _locked(connection: AsyncConnection, tenant_id: str, workflow_id: UUID):
    row = (
        await connection.execute(
            select(workflows)
            .where(workflows.c.id == workflow_id, workflows.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()
    if row is None:
        raise not_found("workflow")
    return row
