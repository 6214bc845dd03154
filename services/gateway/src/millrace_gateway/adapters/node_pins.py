"""Pinned sample outputs of a workflow's nodes (``workflow_node_pins``). Every function works inside
the caller's transaction; the caller has checked that the workflow is the tenant's."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.platform.tables import workflow_node_pins as pins
from sqlalchemy import Row, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

_COLUMNS = (pins.c.node_id, pins.c.output, pins.c.pinned_by, pins.c.pinned_at)


async def put(
    connection: AsyncConnection,
    tenant_id: str,
    workflow_id: UUID,
    node_id: str,
    output: JsonObject,
    *,
    by: UUID | None,
    now: datetime,
) -> Row:
    values = {"output": output, "pinned_by": by, "pinned_at": now}
    statement = (
        insert(pins)
        .values(workflow_id=workflow_id, node_id=node_id, tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=[pins.c.workflow_id, pins.c.node_id], set_=values)
        .returning(*_COLUMNS)
    )
    return (await connection.execute(statement)).one()


async def all_of(connection: AsyncConnection, tenant_id: str, workflow_id: UUID) -> Sequence[Row]:
    statement = (
        select(*_COLUMNS)
        .where(pins.c.workflow_id == workflow_id, pins.c.tenant_id == tenant_id)
        .order_by(pins.c.node_id)
    )
    return (await connection.execute(statement)).all()


async def remove(connection: AsyncConnection, tenant_id: str, workflow_id: UUID, node_id: str) -> bool:
    statement = delete(pins).where(
        pins.c.workflow_id == workflow_id, pins.c.tenant_id == tenant_id, pins.c.node_id == node_id
    )
    return (await connection.execute(statement)).rowcount > 0
