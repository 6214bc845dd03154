"""Workflows and their immutable versions in PostgreSQL (``workflows``, ``workflow_versions``), with the
run statistics their lists show. Every function works inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform.tables import (
    api_keys,
    runs,
    schedule_cursors,
    users,
    workflow_versions,
    workflows,
)
from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    and_,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.adapters.pages import Page, fetch_page
from millrace_gateway.domain.workflow_links import LinkedWorkflow
from millrace_gateway.domain.workflows import FINISHED_RUN_STATUSES, Status


async def insert_draft(
    connection: AsyncConnection,
    workflow_id: UUID,
    tenant_id: str,
    name: str,
    webhook_token: str,
    now: datetime,
    *,
    description: str = "",
    created_by: UUID | None = None,
) -> None:
    """A draft workflow whose latest version is 1 (the caller adds it); ``created_by`` is the user
    or API key that made it."""
    await connection.execute(
        insert(workflows).values(
            id=workflow_id,
            tenant_id=tenant_id,
            name=name,
            status="draft",
            latest_version=1,
            active_version=None,
            webhook_token=webhook_token,
            created_at=now,
            updated_at=now,
            description=description,
            created_by=created_by,
            updated_by=created_by,
        )
    )


async def add_version(
    connection: AsyncConnection,
    tenant_id: str,
    workflow_id: UUID,
    version: int,
    definition: WorkflowDefinition,
    now: datetime,
) -> None:
    await connection.execute(
        insert(workflow_versions).values(
            workflow_id=workflow_id,
            version=version,
            tenant_id=tenant_id,
            definition=definition.model_dump(mode="json", by_alias=True),
            created_at=now,
        )
    )


async def advance(
    connection: AsyncConnection,
    workflow_id: UUID,
    *,
    name: str,
    latest_version: int,
    now: datetime,
    updated_by: UUID | None = None,
    description: str | None = None,
) -> None:
    """A new latest version; ``description`` None keeps the workflow's description."""
    values: dict[str, object] = {
        "name": name,
        "latest_version": latest_version,
        "updated_at": now,
        "updated_by": updated_by,
    }
    if description is not None:
        values["description"] = description
    await connection.execute(update(workflows).where(workflows.c.id == workflow_id).values(**values))


async def schedules(connection: AsyncConnection, workflow_id: UUID) -> Sequence[Row]:
    """Where each of the workflow's schedules stands (the trigger service writes these rows; the
    API only reads them): its last and next slot and its count of runs, by schedule name."""
    rows = await connection.execute(
        select(
            schedule_cursors.c.schedule_name,
            schedule_cursors.c.activated_at,
            schedule_cursors.c.last_slot_at,
            schedule_cursors.c.next_slot_at,
            schedule_cursors.c.run_count,
        ).where(schedule_cursors.c.workflow_id == workflow_id)
    )
    return rows.all()


async def set_status(
    connection: AsyncConnection,
    workflow_id: UUID,
    status: Status,
    *,
    active_version: int | None,
    now: datetime,
) -> None:
    await connection.execute(
        update(workflows)
        .where(workflows.c.id == workflow_id)
        .values(status=status, active_version=active_version, updated_at=now)
    )


async def locked(connection: AsyncConnection, tenant_id: str, workflow_id: UUID) -> Row | None:
    """The tenant's workflow row, locked until the transaction ends."""
    return (
        await connection.execute(
            select(workflows)
            .where(workflows.c.id == workflow_id, workflows.c.tenant_id == tenant_id)
            .with_for_update()
        )
    ).first()


async def exists(connection: AsyncConnection, tenant_id: str, workflow_id: UUID) -> bool:
    found = await connection.execute(
        select(workflows.c.id).where(workflows.c.id == workflow_id, workflows.c.tenant_id == tenant_id)
    )
    return found.first() is not None


async def summary(connection: AsyncConnection, tenant_id: str, workflow_id: UUID) -> Row | None:
    """The tenant's workflow with its run statistics, trigger kind and newest definition."""
    query = (
        _summary_query(tenant_id)
        .add_columns(workflow_versions.c.definition)
        .where(workflows.c.id == workflow_id)
    )
    return (await connection.execute(query)).first()


async def summaries(
    connection: AsyncConnection,
    tenant_id: str,
    *,
    status: Status | None,
    name: str | None,
    limit: int,
    offset: int,
) -> Page:
    """The tenant's workflows with their run statistics, newest first; ``name`` matches any part, any case."""
    query = _summary_query(tenant_id).order_by(workflows.c.created_at.desc(), workflows.c.id)
    if status is not None:
        query = query.where(workflows.c.status == status)
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(workflows.c.name.ilike(f"%{escaped}%", escape="\\"))
    return await fetch_page(connection, query, limit=limit, offset=offset)


async def versions(connection: AsyncConnection, workflow_id: UUID) -> Sequence[Row]:
    """Every version's number and creation time, newest first."""
    rows = await connection.execute(
        select(workflow_versions.c.version, workflow_versions.c.created_at)
        .where(workflow_versions.c.workflow_id == workflow_id)
        .order_by(workflow_versions.c.version.desc())
    )
    return rows.all()


async def version(connection: AsyncConnection, workflow_id: UUID, version: int) -> Row | None:
    return (
        await connection.execute(
            select(workflow_versions).where(
                workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.version == version
            )
        )
    ).first()


async def definition(
    connection: AsyncConnection, workflow_id: UUID, version: int
) -> WorkflowDefinition | None:
    row = (
        await connection.execute(
            select(workflow_versions.c.definition).where(
                workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.version == version
            )
        )
    ).first()
    return None if row is None else WorkflowDefinition.model_validate(row.definition)


async def webhook_token(connection: AsyncConnection, workflow_id: UUID) -> str:
    return (
        await connection.execute(select(workflows.c.webhook_token).where(workflows.c.id == workflow_id))
    ).scalar_one()


def _summary_query(tenant_id: str) -> Select:
    """Workflows with their run statistics and trigger kind: one statement for a whole page."""
    stats = (
        select(
            func.count().label("run_count"),
            func.count().filter(runs.c.status == "completed").label("completed"),
            func.count().filter(runs.c.status.in_(FINISHED_RUN_STATUSES)).label("finished"),
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
            _who(workflows.c.created_by).label("created_by_name"),
            _who(workflows.c.updated_by).label("updated_by_name"),
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


def _who(column: ColumnElement) -> ColumnElement:
    """The name of the user (their email) or the API key (``API key <name>``) behind an id."""
    user = select(users.c.email).where(users.c.id == column).scalar_subquery()
    key = select(literal("API key ") + api_keys.c.name).where(api_keys.c.id == column).scalar_subquery()
    return func.coalesce(user, key)


async def linked(
    connection: AsyncConnection, tenant_id: str, ids: Iterable[UUID]
) -> dict[UUID, LinkedWorkflow]:
    """The tenant's workflows among ``ids``, with their newest version and status."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await connection.execute(
        select(workflows.c.id, workflows.c.latest_version, workflows.c.status).where(
            workflows.c.tenant_id == tenant_id, workflows.c.id.in_(wanted)
        )
    )
    return {row.id: LinkedWorkflow(row.latest_version, row.status) for row in rows}
