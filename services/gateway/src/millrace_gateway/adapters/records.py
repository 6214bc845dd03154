"""Pipelines and their records in PostgreSQL (``pipelines``, ``records``). Every function works inside
the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.platform.tables import pipelines, records
from sqlalchemy import Row, Text, cast, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.adapters.pages import Page, fetch_keyset_page
from millrace_gateway.domain.cursors import Cursor


async def insert_pipeline(
    connection: AsyncConnection, tenant_id: str, pipeline_id: str, name: str, now: datetime
) -> None:
    """Raises ``IntegrityError`` (when the transaction ends, at the latest) if the id is taken."""
    await connection.execute(
        insert(pipelines).values(tenant_id=tenant_id, id=pipeline_id, name=name, created_at=now)
    )


async def pipelines_with_counts(connection: AsyncConnection, tenant_id: str) -> Sequence[Row]:
    """The tenant's pipelines by id, each with its ``record_count``."""
    counts = (
        select(records.c.pipeline_id, func.count().label("n"))
        .where(records.c.tenant_id == tenant_id)
        .group_by(records.c.pipeline_id)
        .subquery()
    )
    query = (
        select(pipelines, func.coalesce(counts.c.n, 0).label("record_count"))
        .outerjoin(counts, counts.c.pipeline_id == pipelines.c.id)
        .where(pipelines.c.tenant_id == tenant_id)
        .order_by(pipelines.c.id)
    )
    return (await connection.execute(query)).all()


async def pipeline(connection: AsyncConnection, tenant_id: str, pipeline_id: str) -> Row | None:
    return (
        await connection.execute(
            select(pipelines).where(pipelines.c.tenant_id == tenant_id, pipelines.c.id == pipeline_id)
        )
    ).first()


async def record_count(connection: AsyncConnection, tenant_id: str, pipeline_id: str) -> int:
    return (
        await connection.execute(
            select(func.count()).where(records.c.tenant_id == tenant_id, records.c.pipeline_id == pipeline_id)
        )
    ).scalar_one()


async def rename_pipeline(connection: AsyncConnection, tenant_id: str, pipeline_id: str, name: str) -> None:
    await connection.execute(
        update(pipelines)
        .where(pipelines.c.tenant_id == tenant_id, pipelines.c.id == pipeline_id)
        .values(name=name)
    )


async def delete_pipeline(connection: AsyncConnection, tenant_id: str, pipeline_id: str) -> None:
    await connection.execute(
        delete(pipelines).where(pipelines.c.tenant_id == tenant_id, pipelines.c.id == pipeline_id)
    )


async def insert_record(
    connection: AsyncConnection,
    record_id: UUID,
    tenant_id: str,
    pipeline_id: str,
    data: JsonObject,
    now: datetime,
) -> None:
    await connection.execute(
        insert(records).values(
            id=record_id,
            tenant_id=tenant_id,
            pipeline_id=pipeline_id,
            data=data,
            created_at=now,
            updated_at=now,
        )
    )


async def records_page(
    connection: AsyncConnection,
    tenant_id: str,
    pipeline_id: str,
    *,
    limit: int,
    offset: int,
    text: str | None = None,
    after: Cursor | None = None,
) -> Page:
    """The pipeline's records, newest first; ``text`` is found anywhere in a record's JSON
    (case-insensitive)."""
    query = select(records).where(records.c.tenant_id == tenant_id, records.c.pipeline_id == pipeline_id)
    if text:
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(cast(records.c.data, Text).ilike(f"%{escaped}%", escape="\\"))
    return await fetch_keyset_page(
        connection,
        query,
        at=records.c.created_at,
        ident=records.c.id,
        limit=limit,
        offset=offset,
        after=after,
    )


async def record(
    connection: AsyncConnection,
    tenant_id: str,
    pipeline_id: str,
    record_id: UUID,
    *,
    for_update: bool = False,
) -> Row | None:
    """The record, locked until the transaction ends when ``for_update``."""
    query = select(records).where(
        records.c.id == record_id, records.c.tenant_id == tenant_id, records.c.pipeline_id == pipeline_id
    )
    return (await connection.execute(query.with_for_update() if for_update else query)).first()


async def update_record(
    connection: AsyncConnection, record_id: UUID, data: JsonObject, now: datetime
) -> None:
    await connection.execute(
        update(records).where(records.c.id == record_id).values(data=data, updated_at=now)
    )


async def delete_record(connection: AsyncConnection, record_id: UUID) -> None:
    await connection.execute(delete(records).where(records.c.id == record_id))
