"""Task use cases: the caller's tasks (those ``task_notify`` nodes assigned to their user id or email,
or to any of their roles), and closing one."""

from __future__ import annotations

from uuid import UUID

from millrace_common.contracts.messages.envelope import utc_now
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters import tasks, users
from millrace_gateway.adapters.pages import Page
from millrace_gateway.adapters.security import Principal
from millrace_gateway.domain.refusals import NotFound
from millrace_gateway.domain.tasks import Addressee, addressee


class Tasks:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def page(self, principal: Principal, *, status: str | None, limit: int, offset: int) -> Page:
        """The caller's tasks, newest first."""
        async with self._engine.connect() as connection:
            caller = await _addressee(connection, principal)
            return await tasks.tasks_page(
                connection, principal.tenant_id, caller, status=status, limit=limit, offset=offset
            )

    async def mark_done(self, principal: Principal, task_id: UUID) -> Row:
        """Close one of the caller's tasks; closing it again changes nothing."""
        async with self._engine.begin() as connection:
            caller = await _addressee(connection, principal)
            row = await tasks.locked_task(connection, principal.tenant_id, caller, task_id)
            if row is None:
                raise NotFound("task")
            if row.status == "open":
                row = await tasks.close(connection, task_id, done_by=str(principal.subject), now=utc_now())
        return row


async def _addressee(connection: AsyncConnection, principal: Principal) -> Addressee:
    email = await users.email_of(connection, principal.subject) if principal.kind == "user" else None
    return addressee(principal, email)
