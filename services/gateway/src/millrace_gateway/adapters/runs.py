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

from millrace_gateway.adapters.pages import Page, fetch_keyset_page
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
    trigger_kind: str | None = None,
    text: str | None = None,
    record_id: UUID | None = None,
    after: Cursor | None = None,
) -> Page:
    """The tenant's runs, newest first. ``text`` is found in the trigger's data (case-insensitive,
    anywhere in its JSON); ``record_id`` keeps the runs a change of that record started."""
    query = select(runs).where(runs.c.tenant_id == tenant_id)
    if workflow_id is not None:
        query = query.where(runs.c.workflow_id == workflow_id)
    if status is not None:
        query = query.where(runs.c.status == status)
    if started_after is not None:
        query = query.where(runs.c.started_at >= started_after)
    if started_before is not None:
        query = query.where(runs.c.started_at < started_before)
    if trigger_kind is not None:
        query = query.where(runs.c.trigger["kind"].astext == trigger_kind)
    if text:
        query = query.where(runs.c.trigger["data"].astext.ilike(f"%{_escape_like(text)}%", escape="\\"))
    if record_id is not None:
        query = query.where(runs.c.trigger[("data", "record", "id")].astext == str(record_id))
    return await fetch_keyset_page(
        connection, query, at=runs.c.started_at, ident=runs.c.run_id, limit=limit, offset=offset, after=after
    )


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def run(connection: AsyncConnection, tenant_id: str, run_id: UUID) -> Row | None:
    return (
        await connection.execute(select(runs).where(runs.c.run_id == run_id, runs.c.tenant_id == tenant_id))
    ).first()


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
