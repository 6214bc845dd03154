"""Which private or loopback networks a tenant's nodes may call (``tenant_network_policies``, read by
the node runner), as the operator's command line sets them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from millrace_common.platform.tables import tenant_network_policies
from sqlalchemy import Row, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection


async def allow_networks(
    connection: AsyncConnection, tenant_id: str, networks: Sequence[str], now: datetime
) -> None:
    """The tenant may reach exactly ``networks`` (CIDR ranges)."""
    values = {"allowed_networks": list(networks), "updated_at": now}
    await connection.execute(
        pg_insert(tenant_network_policies)
        .values(tenant_id=tenant_id, allow_private_targets=False, **values)
        .on_conflict_do_update(index_elements=["tenant_id"], set_=values)
    )


async def policy(connection: AsyncConnection, tenant_id: str) -> Row | None:
    """The tenant's policy row, or None when the operator never set one (public targets only)."""
    query = select(tenant_network_policies).where(tenant_network_policies.c.tenant_id == tenant_id)
    return (await connection.execute(query)).first()
