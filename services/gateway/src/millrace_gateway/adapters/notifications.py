"""Notifications in PostgreSQL: the tenant's channels (``tenant_notification_settings``, written here,
read by the node runner, which delivers) and the notifications with their attempts (written by the
node runner, read here; a given-up one is put back to pending by a retry). Every function works inside
the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from millrace_common.platform.human_tables import (
    notification_attempts,
    notifications,
    tenant_notification_settings,
)
from sqlalchemy import Row, and_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def settings(connection: AsyncConnection, tenant_id: str) -> Row | None:
    query = select(tenant_notification_settings).where(tenant_notification_settings.c.tenant_id == tenant_id)
    return (await connection.execute(query)).first()


async def put_settings(
    connection: AsyncConnection, tenant_id: str, values: dict[str, object], now: datetime
) -> None:
    """``values`` without ``chat_webhook_ciphertext`` keeps the stored URL."""
    changed = {**values, "updated_at": now}
    await connection.execute(
        pg_insert(tenant_notification_settings)
        .values(tenant_id=tenant_id, created_at=now, **changed)
        .on_conflict_do_update(index_elements=["tenant_id"], set_=changed)
    )


async def page(
    connection: AsyncConnection,
    tenant_id: str,
    *,
    status: str | None,
    channel: str | None,
    after: tuple[datetime, UUID] | None,
    limit: int,
) -> Sequence[Row]:
    """Newest first, keyed by (created_at, id); ``after`` is the last row of the page before."""
    conditions = [notifications.c.tenant_id == tenant_id]
    if status is not None:
        conditions.append(notifications.c.status == status)
    if channel is not None:
        conditions.append(notifications.c.channel == channel)
    if after is not None:
        conditions.append(tuple_(notifications.c.created_at, notifications.c.id) < tuple_(*after))
    query = (
        select(notifications)
        .where(and_(*conditions))
        .order_by(notifications.c.created_at.desc(), notifications.c.id.desc())
        .limit(limit)
    )
    return list(await connection.execute(query))


async def one(connection: AsyncConnection, tenant_id: str, notification_id: UUID) -> Row | None:
    query = select(notifications).where(
        notifications.c.id == notification_id, notifications.c.tenant_id == tenant_id
    )
    return (await connection.execute(query)).first()


async def attempts(connection: AsyncConnection, notification_id: UUID) -> Sequence[Row]:
    query = (
        select(notification_attempts)
        .where(notification_attempts.c.notification_id == notification_id)
        .order_by(notification_attempts.c.attempt)
    )
    return list(await connection.execute(query))


async def retry(connection: AsyncConnection, tenant_id: str, notification_id: UUID, now: datetime) -> bool:
    """A given-up notification is due again at once; False when it is not (any more) given up."""
    answer = await connection.execute(
        update(notifications)
        .where(
            notifications.c.id == notification_id,
            notifications.c.tenant_id == tenant_id,
            notifications.c.status == "given_up",
        )
        .values(status="pending", next_attempt_at=now, updated_at=now)
    )
    return answer.rowcount == 1
