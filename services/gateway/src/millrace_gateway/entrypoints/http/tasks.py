"""Tasks and notifications that ``task_notify`` nodes create: each caller sees those assigned to them
(by user id or email) or to any of their roles, and marks them done."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel

from millrace_gateway.entrypoints.http.deps import Reader, TasksDep

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
    tasks: TasksDep,
    status: TaskStatus | None = "open",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> TaskPage:
    """The caller's tasks, newest first; ``status`` defaults to open ones."""
    page = await tasks.page(reader, status=status, limit=limit, offset=offset)
    return TaskPage(
        items=[TaskOut.model_validate(row, from_attributes=True) for row in page.items],
        next_offset=page.next_offset,
    )


@router.post("/{task_id}/done", response_model=TaskOut)
async def mark_done(task_id: UUID, reader: Reader, tasks: TasksDep) -> TaskOut:
    """Close one of the caller's tasks; closing it again changes nothing."""
    return TaskOut.model_validate(await tasks.mark_done(reader, task_id), from_attributes=True)
