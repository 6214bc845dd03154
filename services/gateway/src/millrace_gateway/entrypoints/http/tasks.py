"""Tasks and notifications that ``task_notify`` nodes create: each caller sees those assigned to them
(by user id or email) or to any of their roles, and marks them done."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from millrace_common.messages.envelope import utc_now
from millrace_common.tables import tasks, users
from pydantic import BaseModel
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from millrace_gateway.adapters.security import Principal
from millrace_gateway.entrypoints.http.deps import EngineDep, Reader
from millrace_gateway.entrypoints.http.errors import not_found

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"])

TaskStatus = Literal["open", "done"]


class TaskOut(BaseModel):
    id: UUID
    assignee_user: str | None
    assignee_role: str | None
    title: str
    message: str
    run_id: UUID | None
    node_id: str | None
    status: str
    created_at: datetime
    done_at: datetime | None
    done_by: str | None


class TaskPage(BaseModel):
    items: list[TaskOut]
    next_offset: int | None


@router.get("", response_model=TaskPage)
async def list_tasks(
    reader: Reader,
    engine: EngineDep,
    status: TaskStatus | None = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TaskPage:
    """The caller's tasks, newest first; ``status`` defaults to open ones."""
    async with engine.connect() as connection:
        query = select(tasks).where(
            tasks.c.tenant_id == reader.tenant_id, await _assigned_to(connection, reader)
        )
        if status is not None:
            query = query.where(tasks.c.status == status)
        rows = (
            await connection.execute(
                query.order_by(tasks.c.created_at.desc(), tasks.c.id).limit(limit + 1).offset(offset)
            )
        ).all()
    return TaskPage(
        items=[TaskOut.model_validate(row, from_attributes=True) for row in rows[:limit]],
        next_offset=offset + limit if len(rows) > limit else None,
    )


@router.post("/{task_id}/done", response_model=TaskOut)
async def mark_done(task_id: UUID, reader: Reader, engine: EngineDep) -> TaskOut:
    """Close one of the caller's tasks; closing it again changes nothing."""
    async with engine.begin() as connection:
        mine = and_(
            tasks.c.id == task_id,
            tasks.c.tenant_id == reader.tenant_id,
            await _assigned_to(connection, reader),
        )
        row = (await connection.execute(select(tasks).where(mine).with_for_update())).first()
        if row is None:
            raise not_found("task")
        if row.status == "open":
            row = (
                await connection.execute(
                    update(tasks)
                    .where(tasks.c.id == task_id)
                    .values(status="done", done_at=utc_now(), done_by=str(reader.subject))
                    .returning(*tasks.c)
                )
            ).one()
    return TaskOut.model_validate(row, from_attributes=True)


async def _assigned_to(connection: AsyncConnection, principal: Principal) -> ColumnElement[bool]:
    """A user's tasks name their id or their email (in any case); an API key has only its roles."""
    names = [str(principal.subject)]
    if principal.kind == "user":
        email = (
            await connection.execute(select(users.c.email).where(users.c.id == principal.subject))
        ).scalar_one_or_none()
        if email is not None:
            names.append(email.lower())
    by_user = func.lower(tasks.c.assignee_user).in_(names)
    roles = sorted(str(role) for role in principal.roles)
    return or_(by_user, tasks.c.assignee_role.in_(roles)) if roles else by_user
