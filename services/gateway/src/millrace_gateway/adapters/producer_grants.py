"""The ``producer_grants`` rows: which Kafka principal may write which tenant's events."""

from __future__ import annotations

from datetime import datetime

from millrace_common.platform.tables import producer_grants, tenants
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.adapters import grant_rows
from millrace_gateway.domain.grants import Grant, GrantKind


async def tenant_exists(connection: AsyncConnection, tenant_id: str) -> bool:
    found = await connection.execute(select(tenants.c.id).where(tenants.c.id == tenant_id))
    return found.first() is not None


async def add(connection: AsyncConnection, grant: Grant, *, by: str, now: datetime) -> bool:
    """Record the grant; False when it was there already."""
    values = {"principal": grant.principal, "tenant_id": grant.tenant_id, "kind": grant.kind.value}
    return await grant_rows.insert_once(
        connection, producer_grants, {**values, "created_by": by, "created_at": now}
    )


async def revoke(connection: AsyncConnection, grant: Grant) -> bool:
    """Remove the grant; False when there was none."""
    key = {"principal": grant.principal, "tenant_id": grant.tenant_id, "kind": grant.kind.value}
    return await grant_rows.delete_one(connection, producer_grants, key)


async def rows(
    connection: AsyncConnection, *, principal: str | None = None, tenant_id: str | None = None
) -> list[Row]:
    order = ("principal", "tenant_id", "kind")
    where = {"principal": principal, "tenant_id": tenant_id}
    return await grant_rows.listed(connection, producer_grants, order=order, where=where)


def grant_of(row: Row) -> Grant:
    return Grant(row.principal, row.tenant_id, GrantKind(row.kind))
