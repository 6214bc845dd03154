"""The tenant's retention of finished runs (``tenant_retention``), which the orchestrator's retention
pass reads. Every function works inside the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from millrace_common.platform.tables import tenant_retention
from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def retention(connection: AsyncConnection, tenant_id: str) -> Row | None:
    query = select(tenant_retention).where(tenant_retention.c.tenant_id == tenant_id)
    return (await connection.execute(query)).first()


async def put_retention(
    connection: AsyncConnection,
    tenant_id: str,
    *,
    run_retention_days: int | None,
    export_before_prune: bool,
    now: datetime,
) -> None:
    values = {
        "run_retention_days": run_retention_days,
        "export_before_prune": export_before_prune,
        "updated_at": now,
    }
    await connection.execute(
        pg_insert(tenant_retention)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=["tenant_id"], set_=values)
    )
