"""Runs as the orchestrator projects them (``runs``, ``node_executions``, ``run_events``), read for the
API; the gateway never writes them. Every function works inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.messages.run_events import RUN_EVENT
from millrace_common.platform.tables import (
    node_executions,
    run_events,
    run_reruns,
    runs,
    workflow_versions,
    workflows,
)
from sqlalchemy import Row, Select, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.adapters.pages import Page, fetch_keyset_page
from millrace_gateway.domain.bulk import RunSelection
from millrace_gateway.domain.cursors import Cursor
from millrace_gateway.domain.live import LiveEvent

HISTORY_PAGE = 500


async def runs_page(
    connection: AsyncConnection,
    tenant_id: str,
    *,
    workflow_id: UUID | None,
    status: str | None,
    started_after: datetime | None,
    started_before: datetime | None,
    limit: int,
    offset: int,
    parent_run_id: UUID | None = None,
    trigger_kind: str | None = None,
    text: str | None = None,
    record_id: UUID | None = None,
    after: Cursor | None = None,
) -> Page:
    """The tenant's runs, newest first. ``text`` is found in the trigger's data (case-insensitive,
    anywhere in its JSON); ``record_id`` keeps the runs a change of that record started."""
    query = select(runs).where(runs.c.tenant_id == tenant_id)
    if parent_run_id is not None:
        query = query.where(runs.c.parent_run_id == parent_run_id)
    if workflow_id is not None:
        query = query.where(runs.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(runs.c.status == status)
    if started_after is not None:
        query = query.where(runs.c.started_at >= started_after)
    if started_before is not None:
        query = query.where(runs.c.started_at < started_before)
    query = _by_trigger(query, trigger_kind, text)
    if record_id is not None:
        query = query.where(runs.c.trigger[("data", "record", "id")].astext == str(record_id))
    return await fetch_keyset_page(
        connection, query, at=runs.c.started_at, ident=runs.c.run_id, limit=limit, offset=offset, after=after
    )


def _by_trigger(query: Select, trigger_kind: str | None, text: str | None) -> Select:
    """Runs of a trigger kind, and runs whose trigger data contains ``text`` (case-insensitive,
    anywhere in its JSON): the runs list's filters and a bulk operation's alike."""
    if trigger_kind is not None:
        query = query.where(runs.c.trigger["kind"].astext == trigger_kind)
    if text:
        query = query.where(runs.c.trigger["data"].astext.ilike(f"%{_escape_like(text)}%", escape="\\"))
    return query


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def run(connection: AsyncConnection, tenant_id: str, run_id: UUID) -> Row | None:
    return (
        await connection.execute(select(runs).where(runs.c.run_id == run_id, runs.c.tenant_id == tenant_id))
    ).first()


MAX_CHILDREN_SHOWN = 200
"""Children a run's JSON lists at most; ``GET /runs?parent_run_id=`` pages through all of them."""


async def children(connection: AsyncConnection, tenant_id: str, run_id: UUID) -> Sequence[Row]:
    """The runs ``run_id``'s sub_workflow nodes started, oldest first."""
    rows = await connection.execute(
        select(runs.c.run_id, runs.c.workflow_id, runs.c.status, runs.c.parent_node_id, runs.c.started_at)
        .where(runs.c.tenant_id == tenant_id, runs.c.parent_run_id == run_id)
        .order_by(runs.c.started_at, runs.c.run_id)
        .limit(MAX_CHILDREN_SHOWN)
    )
    return rows.all()


async def nodes(connection: AsyncConnection, run_id: UUID) -> Sequence[Row]:
    """The run's node executions in the order they were scheduled (or, for nodes evaluated in place,
    finished)."""
    rows = await connection.execute(
        select(node_executions)
        .where(node_executions.c.run_id == run_id)
        .order_by(
            func.coalesce(node_executions.c.scheduled_at, node_executions.c.finished_at),
            node_executions.c.finished_at,
        )
    )
    return rows.all()


async def owned(connection: AsyncConnection, tenant_id: str, run_id: UUID) -> bool:
    row = await connection.execute(
        select(runs.c.run_id).where(runs.c.run_id == run_id, runs.c.tenant_id == tenant_id)
    )
    return row.first() is not None


async def status_and_last_seq(connection: AsyncConnection, run_id: UUID) -> Row | None:
    """The run's status and the seq of the newest event in its log (``newest``; None before any)."""
    newest = select(func.max(run_events.c.seq)).where(run_events.c.run_id == run_id).scalar_subquery()
    query = select(runs.c.status, newest.label("newest")).where(runs.c.run_id == run_id)
    return (await connection.execute(query)).first()


async def history(
    connection: AsyncConnection, tenant_id: str, run_id: UUID, *, after: int
) -> list[LiveEvent]:
    """Up to :data:`HISTORY_PAGE` of the run's logged events after ``after``, each serialised the way the
    orchestrator publishes it (the log keeps the event's fields; the topic carries its JSON)."""
    rows = await connection.execute(
        select(run_events.c.seq, run_events.c.type, run_events.c.payload)
        .where(run_events.c.run_id == run_id, run_events.c.seq > after)
        .order_by(run_events.c.seq)
        .limit(HISTORY_PAGE)
    )
    return [
        LiveEvent(tenant_id, run_id, row.seq, row.type, RUN_EVENT.validate_python(row.payload).to_bytes())
        for row in rows
    ]


async def first_of_type(connection: AsyncConnection, run_id: UUID, event_type: str) -> dict | None:
    """The payload of the run's first logged event of ``event_type`` (None when it has none)."""
    row = (
        await connection.execute(
            select(run_events.c.payload)
            .where(run_events.c.run_id == run_id, run_events.c.type == event_type)
            .order_by(run_events.c.seq)
            .limit(1)
        )
    ).first()
    return dict(row.payload) if row is not None else None


def _selected(query: Select, tenant_id: str, selection: RunSelection) -> Select:
    query = query.where(runs.c.tenant_id == tenant_id)
    if selection.run_ids is not None:
        query = query.where(runs.c.run_id.in_(selection.run_ids))
    if selection.workflow_id is not None:
        query = query.where(runs.c.workflow_id == selection.workflow_id)
    if selection.status is not None:
        query = query.where(runs.c.status == selection.status)
    if selection.started_after is not None:
        query = query.where(runs.c.started_at >= selection.started_after)
    if selection.started_before is not None:
        query = query.where(runs.c.started_at < selection.started_before)
    return _by_trigger(query, selection.trigger_kind, selection.text)


async def count_selected(connection: AsyncConnection, tenant_id: str, selection: RunSelection) -> int:
    """How many of the tenant's runs the selection matches (another tenant's never count)."""
    query = _selected(select(func.count()).select_from(runs), tenant_id, selection)
    return int((await connection.execute(query)).scalar_one())


async def selected_ids(
    connection: AsyncConnection, tenant_id: str, selection: RunSelection, *, limit: int
) -> list[UUID]:
    """Up to ``limit`` of the tenant's runs the selection matches, oldest first."""
    query = _selected(select(runs.c.run_id), tenant_id, selection)
    query = query.order_by(runs.c.started_at, runs.c.run_id).limit(limit)
    return list((await connection.execute(query)).scalars())


async def record_rerun(
    connection: AsyncConnection,
    tenant_id: str,
    run_id: UUID,
    *,
    rerun_of: UUID,
    requested_by: str,
    requested_at: datetime,
) -> None:
    await connection.execute(
        insert(run_reruns).values(
            run_id=run_id,
            tenant_id=tenant_id,
            rerun_of=rerun_of,
            requested_by=requested_by,
            requested_at=requested_at,
        )
    )


async def rerun_of(connection: AsyncConnection, tenant_id: str, run_id: UUID) -> UUID | None:
    """The run this one re-ran, if it is a re-run."""
    query = select(run_reruns.c.rerun_of).where(
        run_reruns.c.run_id == run_id, run_reruns.c.tenant_id == tenant_id
    )
    return (await connection.execute(query)).scalar_one_or_none()


async def reruns(connection: AsyncConnection, tenant_id: str, run_id: UUID) -> list[UUID]:
    """The re-runs of the run, oldest first."""
    query = (
        select(run_reruns.c.run_id)
        .where(run_reruns.c.rerun_of == run_id, run_reruns.c.tenant_id == tenant_id)
        .order_by(run_reruns.c.requested_at, run_reruns.c.run_id)
    )
    return list((await connection.execute(query)).scalars())


async def workflow_status(
    connection: AsyncConnection, tenant_id: str, workflow_id: UUID, version: int
) -> tuple[str | None, bool]:
    """The tenant's workflow's status (None: there is no such workflow) and whether it has ``version``."""
    has_version = (
        select(workflow_versions.c.version)
        .where(workflow_versions.c.workflow_id == workflow_id, workflow_versions.c.version == version)
        .exists()
    )
    query = select(workflows.c.status, has_version.label("has_version")).where(
        workflows.c.id == workflow_id, workflows.c.tenant_id == tenant_id
    )
    row = (await connection.execute(query)).first()
    return (None, False) if row is None else (row.status, bool(row.has_version))
