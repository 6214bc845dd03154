"""The ``producer_grants`` rows: which Kafka principal may write which tenant's events."""

from __future__ import annotations

from datetime import datetime

from millrace_common.platform.tables import producer_grants, tenants
from sqlalchemy import Row, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.domain.grants import Grant, GrantKind


async def tenant_exists(connection: AsyncConnection, tenant_id: str) -> bool:
    found = await connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))
    return found.first() is not None


async def add(connection: AsyncConnection, grant: Grant, *, by: str, now: datetime) -> bool:
    """Record the grant; False when it was there already."""
    added = await connection.execute(
        pg_insert(producer_grants)
        .values(
            principal=grant.principal,
            tenant_id=grant.tenant_id,
            kind=grant.kind.value,
            created_by=by,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(producer_grants.c.principal)
    )
    return added.first() is not None


async def revoke(connection: AsyncConnection, grant: Grant) -> bool:
    """Remove the grant; False when there was none."""
    gone = await connection.execute(
        delete(producer_grants)
        .where(
            producer_grants.c.principal == grant.principal,
            producer_grants.c.tenant_id == grant.tenant_id,
            producer_grants.c.kind == grant.kind.value,
        )
        .returning(producer_grants.c.principal)
    )
    return gone.first() is not None


async def rows(
    connection: AsyncConnection, *, principal: str | None = None, tenant_id: str | None = None
) -> list[Row]:
    query = select(producer_grants).order_by(
        producer_grants.c.principal, producer_grants.c.tenant_id, producer_grants.c.kind
    )
    if principal is not None:
        query = query.where(producer_grants.c.principal == principal)
    if tenant_id is not None:
        query = query.where(producer_grants.c.tenant_id == tenant_id)
    return list((await connection.execute(query)).all())


def grant_of(row: Row) -> Grant:
    return Grant(row.principal, row.tenant_id, GrantKind(row.kind))
