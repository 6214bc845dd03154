"""Who is calling: the bearer credential of a request (an access token or an API key) checked against
the token key and the ``api_keys`` table. Shared by every service with a tenant-scoped API."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.auth import (
    InvalidCredentials,
    Principal,
    Tokens,
    api_key_matches,
    api_key_prefix,
)
from millrace_common.platform.permissions import Role
from millrace_common.platform.tables import api_keys


async def authenticate(
    scheme: str | None, presented: str | None, tokens: Tokens, engine: AsyncEngine
) -> Principal:
    """The caller behind ``Authorization: <scheme> <presented>``; ``InvalidCredentials`` says why not.
    An API key's use is recorded (``last_used_at``)."""
    if presented is None or (scheme or "").lower() != "bearer":
        raise InvalidCredentials("send 'Authorization: Bearer <access token or API key>'")
    prefix = api_key_prefix(presented)
    if prefix is None:
        return tokens.verify(presented)
    async with engine.begin() as connection:
        row = (
            await connection.execute(
                select(api_keys).where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
            )
        ).first()
        if row is None or not api_key_matches(presented, row.key_hash):
            raise InvalidCredentials("the API key is not valid")
        await connection.execute(
            update(api_keys).where(api_keys.c.id == row.id).values(last_used_at=utc_now())
        )
    return Principal(row.tenant_id, row.id, "api_key", frozenset(Role(r) for r in row.roles))
