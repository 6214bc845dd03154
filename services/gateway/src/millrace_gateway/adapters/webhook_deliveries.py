"""Webhook delivery ids already accepted (``webhook_deliveries``): the gateway claims each call's id,
the trigger service prunes old ones (its retention loop)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from millrace_common.platform.tables import webhook_deliveries
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def claim(
    connection: AsyncConnection, workflow_id: UUID, delivery_id: str, run_id: UUID, now: datetime
) -> bool:
    """False when the workflow has seen this delivery id before."""
    claimed = (
        await connection.execute(
            pg_insert(webhook_deliveries)
            .values(workflow_id=workflow_id, delivery_id=delivery_id, run_id=run_id, received_at=now)
            .on_conflict_do_nothing()
            .returning(webhook_deliveries.c.run_id)
        )
    ).first()
    return claimed is not None
