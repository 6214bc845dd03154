"""PostgreSQL access for approvals: rows in, domain values out. Every function runs inside the
caller's transaction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.platform.human_tables import (
    approval_audit,
    approval_deadlines,
    approval_decisions,
    approval_notifications,
    approvals,
)
from millrace_common.platform.tables import users, workflows
from sqlalchemy import Row, and_, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_approval.domain.approvals import Actor, Approval, Assignee, Status, Vote


async def resolve_assignee(connection: AsyncConnection, tenant_id: str, assignee: Assignee) -> Assignee:
    """A user named by email becomes the user's id when the tenant has such a user."""
    if assignee.user is None or "@" not in assignee.user:
        return assignee
    found = (
        await connection.execute(
            select(users.c.id).where(users.c.tenant_id == tenant_id, users.c.email == assignee.user.lower())
        )
    ).scalar_one_or_none()
    return Assignee(user=str(found)) if found is not None else assignee


async def user_email(connection: AsyncConnection, tenant_id: str, subject: str) -> str | None:
    try:
        user_id = UUID(subject)
    except ValueError:
        return None
    return (
        await connection.execute(
            select(users.c.email).where(users.c.tenant_id == tenant_id, users.c.id == user_id)
        )
    ).scalar_one_or_none()


async def insert_request(connection: AsyncConnection, values: dict[str, object]) -> bool:
    """Insert once; a redelivered request finds its row and changes nothing."""
    result = await connection.execute(
        pg_insert(approvals)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[approvals.c.id])
        .returning(approvals.c.id)
    )
    return result.first() is not None


async def add_deadline(
    connection: AsyncConnection, approval_id: UUID, tenant_id: str, fire_at: datetime
) -> None:
    await connection.execute(
        pg_insert(approval_deadlines)
        .values(approval_id=approval_id, tenant_id=tenant_id, fire_at=fire_at)
        .on_conflict_do_nothing()
    )


async def audit(
    connection: AsyncConnection, row: Row, actor: str | None, action: str, detail: JsonObject, at: datetime
) -> None:
    await connection.execute(
        insert(approval_audit).values(
            approval_id=row.id, tenant_id=row.tenant_id, actor=actor, action=action, detail=detail, at=at
        )
    )


async def notify(
    connection: AsyncConnection, row: Row, assignee: Assignee, reason: str, at: datetime
) -> None:
    await connection.execute(
        insert(approval_notifications).values(
            approval_id=row.id,
            tenant_id=row.tenant_id,
            assignee_user=assignee.user,
            assignee_role=assignee.role,
            reason=reason,
            created_at=at,
        )
    )


async def load(
    connection: AsyncConnection, tenant_id: str, approval_id: UUID, *, lock: bool = False
) -> Row | None:
    query = select(approvals).where(approvals.c.id == approval_id, approvals.c.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await connection.execute(query)).first()


async def votes(connection: AsyncConnection, approval_id: UUID) -> list[Row]:
    return list(
        await connection.execute(
            select(approval_decisions)
            .where(approval_decisions.c.approval_id == approval_id)
            .order_by(approval_decisions.c.decided_at)
        )
    )


async def history(connection: AsyncConnection, approval_id: UUID) -> list[Row]:
    return list(
        await connection.execute(
            select(approval_audit)
            .where(approval_audit.c.approval_id == approval_id)
            .order_by(approval_audit.c.id)
        )
    )


def to_domain(row: Row, vote_rows: list[Row]) -> Approval:
    return Approval(
        status=Status(row.status),
        assignee=Assignee(user=row.assignee_user, role=row.assignee_role),
        quorum=row.quorum,
        allow_self_approval=row.allow_self_approval,
        requested_by=row.requested_by,
        data_hash=row.data_hash,
        votes=tuple(Vote(v.decided_by, v.decision) for v in vote_rows),
    )


async def add_vote(
    connection: AsyncConnection, approval_id: UUID, vote: Vote, note: str, data_hash: str, at: datetime
) -> None:
    await connection.execute(
        insert(approval_decisions).values(
            approval_id=approval_id,
            decided_by=vote.decided_by,
            decision=vote.decision,
            note=note,
            data_hash=data_hash,
            decided_at=at,
        )
    )


async def set_status(connection: AsyncConnection, approval_id: UUID, status: Status, at: datetime) -> None:
    await connection.execute(
        update(approvals).where(approvals.c.id == approval_id).values(status=status.value, closed_at=at)
    )
    await connection.execute(
        delete(approval_deadlines).where(approval_deadlines.c.approval_id == approval_id)
    )


async def close_pending(
    connection: AsyncConnection, run_id: UUID, status: Status, at: datetime, node_id: str | None = None
) -> list[Row]:
    """Close the run's pending approvals (only the node's, when given); returns the rows closed."""
    condition = and_(approvals.c.run_id == run_id, approvals.c.status == Status.PENDING.value)
    if node_id is not None:
        condition = and_(condition, approvals.c.node_id == node_id)
    closed = list(
        await connection.execute(
            update(approvals).where(condition).values(status=status.value, closed_at=at).returning(approvals)
        )
    )
    if closed:
        await connection.execute(
            delete(approval_deadlines).where(approval_deadlines.c.approval_id.in_([row.id for row in closed]))
        )
    return closed


async def reassign(
    connection: AsyncConnection, approval_id: UUID, assignee: Assignee, escalated_at: datetime | None
) -> None:
    values: dict[str, object] = {"assignee_user": assignee.user, "assignee_role": assignee.role}
    if escalated_at is not None:
        values["escalated_at"] = escalated_at
    await connection.execute(update(approvals).where(approvals.c.id == approval_id).values(**values))


async def take_due_deadlines(connection: AsyncConnection, now: datetime, limit: int = 100) -> list[Row]:
    """Due escalations, locked so a second instance skips them; their rows are deleted here."""
    due = list(
        await connection.execute(
            select(approval_deadlines.c.approval_id, approval_deadlines.c.tenant_id)
            .where(approval_deadlines.c.fire_at <= now)
            .order_by(approval_deadlines.c.fire_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if due:
        await connection.execute(
            delete(approval_deadlines).where(
                approval_deadlines.c.approval_id.in_([row.approval_id for row in due])
            )
        )
    return due


async def pending_for(connection: AsyncConnection, tenant_id: str, actor: Actor) -> list[Row]:
    mine = [approvals.c.assignee_user == actor.subject]
    if actor.email:
        mine.append(approvals.c.assignee_user == actor.email)
    if actor.roles:
        mine.append(approvals.c.assignee_role.in_([role.value for role in actor.roles]))
    return list(
        await connection.execute(
            select(approvals)
            .where(approvals.c.tenant_id == tenant_id, approvals.c.status == Status.PENDING.value, or_(*mine))
            .order_by(approvals.c.requested_at)
            .limit(500)
        )
    )


async def count_pending(connection: AsyncConnection) -> int:
    return (
        await connection.execute(select(func.count()).where(approvals.c.status == Status.PENDING.value))
    ).scalar_one()


async def workflow_names(connection: AsyncConnection, tenant_id: str, ids: set[UUID]) -> dict[UUID, str]:
    if not ids:
        return {}
    rows = await connection.execute(
        select(workflows.c.id, workflows.c.name).where(
            workflows.c.tenant_id == tenant_id, workflows.c.id.in_(ids)
        )
    )
    return {row.id: row.name for row in rows}


async def user_for_sign_in(connection: AsyncConnection, tenant_id: str, email: str) -> Row | None:
    return (
        await connection.execute(
            select(users).where(
                users.c.tenant_id == tenant_id, users.c.email == email.lower(), users.c.disabled.is_(False)
            )
        )
    ).first()


async def of_run(connection: AsyncConnection, tenant_id: str, run_id: UUID) -> list[Row]:
    return list(
        await connection.execute(
            select(approvals)
            .where(approvals.c.tenant_id == tenant_id, approvals.c.run_id == run_id)
            .order_by(approvals.c.requested_at)
        )
    )
