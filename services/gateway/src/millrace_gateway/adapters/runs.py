"""Runs as the orchestrator projects them (``runs``, ``node_executions``, ``run_events``), read for the
API; the gateway never writes them. Every function works inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.messages.run_events import RUN_EVENT
from millrace_common.platform.tables import node_executions, run_events, runs
from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.adapters.pages import Page, fetch_page
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
) -> Page:
    """The tenant's runs, newest first."""
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
    query = query.order_by(runs.c.started_at.desc(), runs.c.run_id)
    return await fetch_page(connection, query, limit=limit, offset=offset)


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
