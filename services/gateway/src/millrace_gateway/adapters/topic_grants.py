"""The ``topic_grants`` rows: which outside Kafka topic a tenant may consume from or produce to."""

from __future__ import annotations

from datetime import datetime

from millrace_common.platform.tables import topic_grants
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.adapters import grant_rows
from millrace_gateway.domain.topic_grants import TopicAccess, TopicGrant


async def add(connection: AsyncConnection, grant: TopicGrant, *, by: str, now: datetime) -> bool:
    """Record the grant; False when it was there already."""
    values = {"tenant_id": grant.tenant_id, "topic": grant.topic, "access": grant.access.value}
    return await grant_rows.insert_once(
        connection, topic_grants, {**values, "created_by": by, "created_at": now}
    )


async def revoke(connection: AsyncConnection, grant: TopicGrant) -> bool:
    """Remove the grant; False when there was none."""
    key = {"tenant_id": grant.tenant_id, "topic": grant.topic, "access": grant.access.value}
    return await grant_rows.delete_one(connection, topic_grants, key)


async def rows(
    connection: AsyncConnection, *, tenant_id: str | None = None, topic: str | None = None
) -> list[Row]:
    order = ("tenant_id", "topic", "access")
    return await grant_rows.listed(
        connection, topic_grants, order=order, where={"tenant_id": tenant_id, "topic": topic}
    )


async def granted(connection: AsyncConnection, tenant_id: str) -> dict[TopicAccess, frozenset[str]]:
    """The tenant's topics per access."""
    found: dict[TopicAccess, set[str]] = {access: set() for access in TopicAccess}
    for row in await rows(connection, tenant_id=tenant_id):
        found[TopicAccess(row.access)].add(row.topic)
    return {access: frozenset(topics) for access, topics in found.items()}


def grant_of(row: Row) -> TopicGrant:
    return TopicGrant(row.tenant_id, row.topic, TopicAccess(row.access))
