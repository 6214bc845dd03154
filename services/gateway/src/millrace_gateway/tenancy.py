"""Creating tenants and their first admin (used by the command line and by tests)."""

from __future__ import annotations

from uuid import UUID, uuid4

from millrace_common.messages.envelope import utc_now
from millrace_common.tables import tenants, users
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters.security import Passwords
from millrace_gateway.domain.permissions import Role


class TenantExists(Exception):
    pass


async def add_user(
    connection: AsyncConnection,
    passwords: Passwords,
    tenant_id: str,
    email: str,
    password: str,
    roles: set[Role],
) -> UUID:
    user_id = uuid4()
    await connection.execute(
        insert(users).values(
            id=user_id,
            tenant_id=tenant_id,
            email=email.lower(),
            password_hash=passwords.hash(password),
            roles=sorted(r.value for r in roles),
            disabled=False,
            created_at=utc_now(),
        )
    )
    return user_id


async def create_tenant(
    engine: AsyncEngine,
    passwords: Passwords,
    tenant_id: str,
    name: str,
    admin_email: str,
    admin_password: str,
) -> UUID:
    """The tenant and its first admin user, in one transaction; returns the admin's id."""
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(tenants).values(id=tenant_id, name=name, created_at=utc_now()))
            return await add_user(connection, passwords, tenant_id, admin_email, admin_password, {Role.ADMIN})
    except IntegrityError as error:
        raise TenantExists(f"tenant {tenant_id!r} exists already") from error
