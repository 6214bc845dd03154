"""The ``topic_grants`` rows: which outside Kafka topic a tenant may consume from or produce to."""

from __future__ import annotations

from datetime import datetime

from millrace_common.platform.tables import topic_grants
from sqlalchemy import Row, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.domain.topic_grants import TopicAccess, TopicGrant


async def add(connection: AsyncConnection, grant: TopicGrant, *, by: str, now: datetime) -> bool:
    """Record the grant; False when it was there already."""
    added = await connection.execute(
        pg_insert(topic_grants)
        .values(
            tenant_id=grant.tenant_id,
            topic=grant.topic,
            access=grant.access.value,
            created_by=by,
            created_at=now,
        )
        .on_conflict_do_nothing()
        .returning(topic_grants.c.topic)
    )
    return added.first() is not None


async def revoke(connection: AsyncConnection, grant: TopicGrant) -> bool:
    """Remove the grant; False when there was none."""
    gone = await connection.execute(
        delete(topic_grants)
        .where(
            topic_grants.c.tenant_id == grant.tenant_id,
            topic_grants.c.topic == grant.topic,
            topic_grants.c.access == grant.access.value,
        )
        .returning(topic_grants.c.topic)
    )
    return gone.first() is not None


async def rows(
    connection: AsyncConnection, *, tenant_id: str | None = None, topic: str | None = None
) -> list[Row]:
    query = select(topic_grants).order_by(
        topic_grants.c.tenant_id, topic_grants.c.topic, topic_grants.c.access
    )
    if tenant_id is not None:
        query = query.where(topic_grants.c.tenant_id == tenant_id)
    if topic is not None:
        query = query.where(topic_grants.c.topic == topic)
    return list((await connection.execute(query)).all())


async def granted(connection: AsyncConnection, tenant_id: str) -> dict[TopicAccess, frozenset[str]]:
    """The tenant's topics per access."""
    found: dict[TopicAccess, set[str]] = {access: set() for access in TopicAccess}
    for row in await rows(connection, tenant_id=tenant_id):
        found[TopicAccess(row.access)].add(row.topic)
    return {access: frozenset(topics) for access, topics in found.items()}


def grant_of(row: Row) -> TopicGrant:
    return TopicGrant(row.tenant_id, row.topic, TopicAccess(row.access))
