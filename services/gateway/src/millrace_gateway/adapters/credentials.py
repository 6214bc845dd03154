"""A tenant's AI settings and named credentials in PostgreSQL (``tenant_ai_settings``, ``credentials``),
their secrets sealed before they get here (``millrace_common.platform.secrets``). Every function
works inside the caller's transaction; the node runner reads both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import datetime
from uuid import UUID

from millrace_common.platform.tables import credentials, tenant_ai_settings
from sqlalchemy import Row, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.domain.ai_usage import ModelPrice


async def ai_settings(connection: AsyncConnection, tenant_id: str) -> Row | None:
    return (
        await connection.execute(
            select(tenant_ai_settings).where(tenant_ai_settings.c.tenant_id == tenant_id)
        )
    ).first()


async def put_ai_settings(
    connection: AsyncConnection,
    tenant_id: str,
    *,
    base_url: str,
    model: str,
    api_key_ciphertext: bytes | None,
    temperature: float,
    max_tokens: int,
    monthly_token_budget: int | None,
    allow_private_endpoint: bool,
    model_prices: Mapping[str, ModelPrice] | None,
    price_currency: str | None,
    now: datetime,
) -> None:
    """The tenant's AI settings become these; the stored key, prices and currency are kept where these
    are None."""
    values: dict[str, object] = {
        "base_url": base_url,
        "model": model,
        "temperature": temperature,
        "max_tokens": max_tokens,
        "monthly_token_budget": monthly_token_budget,
        "allow_private_endpoint": allow_private_endpoint,
        "updated_at": now,
    }
    if api_key_ciphertext is not None:
        values["api_key_ciphertext"] = api_key_ciphertext
    if model_prices is not None:
        values["model_prices"] = {model: asdict(price) for model, price in model_prices.items()}
    if price_currency is not None:
        values["price_currency"] = price_currency
    await connection.execute(
        pg_insert(tenant_ai_settings)
        .values(tenant_id=tenant_id, **values)
        .on_conflict_do_update(index_elements=["tenant_id"], set_=values)
    )


async def insert_credential(
    connection: AsyncConnection,
    credential_id: UUID,
    tenant_id: str,
    name: str,
    kind: str,
    ciphertext: bytes,
    now: datetime,
) -> None:
    """Raises ``IntegrityError`` (when the transaction ends, at the latest) if the name is taken."""
    await connection.execute(
        insert(credentials).values(
            id=credential_id,
            tenant_id=tenant_id,
            name=name,
            kind=kind,
            ciphertext=ciphertext,
            created_at=now,
            updated_at=now,
        )
    )


async def credentials_of(connection: AsyncConnection, tenant_id: str) -> Sequence[Row]:
    """The tenant's credentials by name (with their sealed secrets)."""
    rows = await connection.execute(
        select(credentials).where(credentials.c.tenant_id == tenant_id).order_by(credentials.c.name)
    )
    return rows.all()


async def credential(connection: AsyncConnection, tenant_id: str, name: str) -> Row | None:
    """The credential with its ``kind`` and sealed ``ciphertext``."""
    return (
        await connection.execute(
            select(credentials).where(credentials.c.tenant_id == tenant_id, credentials.c.name == name)
        )
    ).first()


async def replace_credential(
    connection: AsyncConnection, tenant_id: str, name: str, kind: str, ciphertext: bytes, now: datetime
) -> bool:
    """False when the tenant has no credential of that name."""
    result = await connection.execute(
        update(credentials)
        .where(credentials.c.tenant_id == tenant_id, credentials.c.name == name)
        .values(kind=kind, ciphertext=ciphertext, updated_at=now)
        .returning(credentials.c.id)
    )
    return result.first() is not None


async def delete_credential(connection: AsyncConnection, tenant_id: str, name: str) -> bool:
    """False when the tenant has no credential of that name."""
    result = await connection.execute(
        delete(credentials)
        .where(credentials.c.tenant_id == tenant_id, credentials.c.name == name)
        .returning(credentials.c.id)
    )
    return result.first() is not None
