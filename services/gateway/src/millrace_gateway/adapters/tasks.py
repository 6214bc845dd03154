"""Tasks in PostgreSQL (``tasks``): the node runner creates them (``task_notify`` nodes), the gateway
lists them and closes them. Every function works inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from millrace_common.platform.tables import tasks
from sqlalchemy import Row, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from millrace_gateway.adapters.pages import Page, fetch_page
from millrace_gateway.domain.tasks import Addressee


async def tasks_page(
    connection: AsyncConnection,
    tenant_id: str,
    addressee: Addressee,
    *,
    status: str | None,
    limit: int,
    offset: int,
) -> Page:
    """The addressee's tasks, newest first."""
    query = select(tasks).where(tasks.c.tenant_id == tenant_id, _assigned_to(addressee))
    if status is not None:
        query = query.where(tasks.c.status == status)
    query = query.order_by(tasks.c.created_at.desc(), tasks.c.id)
    return await fetch_page(connection, query, limit=limit, offset=offset)


async def locked_task(
    connection: AsyncConnection, tenant_id: str, addressee: Addressee, task_id: UUID
) -> Row | None:
    """One of the addressee's tasks, locked until the transaction ends."""
    mine = and_(tasks.c.id == task_id, tasks.c.tenant_id == tenant_id, _assigned_to(addressee))
    return (await connection.execute(select(tasks).where(mine).with_for_update())).first()


async def close(connection: AsyncConnection, task_id: UUID, *, done_by: str, now: datetime) -> Row:
    """The task, done; returns its row."""
    return (
        await connection.execute(
            update(tasks)
            .where(tasks.c.id == task_id)
            .values(status="done", done_at=now, done_by=done_by)
            .returning(*tasks.c)
        )
    ).one()


def _assigned_to(addressee: Addressee) -> ColumnElement[bool]:
    by_user = func.lower(tasks.c.assignee_user).in_(list(addressee.names))
    roles = list(addressee.roles)
    return or_(by_user, tasks.c.assignee_role.in_(roles)) if roles else by_user
