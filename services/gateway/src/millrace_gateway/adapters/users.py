"""Tenants, their users and their API keys in PostgreSQL (``tenants``, ``users``, ``api_keys``). Every
function works inside the caller's transaction. (``millrace_common.platform.callers`` also stamps an API key's
``last_used_at`` when a key signs a request in, in any service.)"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from uuid import UUID

from millrace_common.platform.tables import api_keys, tenants, users
from sqlalchemy import Row, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.domain.permissions import Role


async def insert_tenant(connection: AsyncConnection, tenant_id: str, name: str, now: datetime) -> None:
    """Raises ``IntegrityError`` if the id is taken."""
    await connection.execute(insert(tenants).values(id=tenant_id, name=name, created_at=now))


async def insert_user(
    connection: AsyncConnection,
    user_id: UUID,
    tenant_id: str,
    email: str,
    password_hash: str,
    roles: Iterable[Role],
    now: datetime,
) -> None:
    """Raises ``IntegrityError`` (when the transaction ends, at the latest) if the tenant has a user with
    this email."""
    await connection.execute(
        insert(users).values(
            id=user_id,
            tenant_id=tenant_id,
            email=email.lower(),
            password_hash=password_hash,
            roles=sorted(r.value for r in roles),
            disabled=False,
            created_at=now,
        )
    )


async def user_by_email(connection: AsyncConnection, tenant_id: str, email: str) -> Row | None:
    return (
        await connection.execute(
            select(users).where(users.c.tenant_id == tenant_id, users.c.email == email.lower())
        )
    ).first()


async def user(connection: AsyncConnection, tenant_id: str, user_id: UUID) -> Row | None:
    return (
        await connection.execute(select(users).where(users.c.id == user_id, users.c.tenant_id == tenant_id))
    ).first()


async def email_of(connection: AsyncConnection, user_id: UUID) -> str | None:
    return (await connection.execute(select(users.c.email).where(users.c.id == user_id))).scalar_one_or_none()


async def users_of(connection: AsyncConnection, tenant_id: str) -> Sequence[Row]:
    """The tenant's users, oldest first."""
    rows = await connection.execute(
        select(users).where(users.c.tenant_id == tenant_id).order_by(users.c.created_at)
    )
    return rows.all()


async def change_user(
    connection: AsyncConnection,
    tenant_id: str,
    user_id: UUID,
    *,
    roles: Iterable[Role] | None,
    disabled: bool | None,
    password_hash: str | None,
) -> bool:
    """Change what is not None; False when the tenant has no such user (not looked for when nothing
    is to change)."""
    values: dict[str, object] = {}
    if roles is not None:
        values["roles"] = sorted(r.value for r in roles)
    if disabled is not None:
        values["disabled"] = disabled
    if password_hash is not None:
        values["password_hash"] = password_hash
    if not values:
        return True
    result = await connection.execute(
        update(users)
        .where(users.c.id == user_id, users.c.tenant_id == tenant_id)
        .values(**values)
        .returning(users.c.id)
    )
    return result.first() is not None


async def insert_api_key(
    connection: AsyncConnection,
    key_id: UUID,
    tenant_id: str,
    name: str,
    prefix: str,
    key_hash: str,
    roles: Iterable[Role],
    created_by: UUID,
    now: datetime,
) -> None:
    await connection.execute(
        insert(api_keys).values(
            id=key_id,
            tenant_id=tenant_id,
            name=name,
            prefix=prefix,
            key_hash=key_hash,
            roles=sorted(r.value for r in roles),
            created_by=created_by,
            created_at=now,
        )
    )


async def api_keys_of(connection: AsyncConnection, tenant_id: str) -> Sequence[Row]:
    """The tenant's API keys, revoked ones too, oldest first."""
    rows = await connection.execute(
        select(api_keys).where(api_keys.c.tenant_id == tenant_id).order_by(api_keys.c.created_at)
    )
    return rows.all()


async def revoke_api_key(connection: AsyncConnection, tenant_id: str, key_id: UUID, now: datetime) -> bool:
    """False when the tenant has no such key, or it is revoked already."""
    result = await connection.execute(
        update(api_keys)
        .where(
            api_keys.c.id == key_id,
            api_keys.c.tenant_id == tenant_id,
            api_keys.c.revoked_at.is_(None),
        )
        .values(revoked_at=now)
        .returning(api_keys.c.id)
    )
    return result.first() is not None
