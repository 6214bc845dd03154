"""Account use cases: sign-in, tenants with their first admin (for the command line and tests), users,
API keys, and the networks a tenant's nodes may reach."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.callers import authenticate
from millrace_common.platform.refusals import FieldProblem
from sqlalchemy import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters import network_policies, users
from millrace_gateway.adapters.security import Passwords, Principal, Tokens, new_api_key
from millrace_gateway.domain.permissions import Role
from millrace_gateway.domain.refusals import NotFound, SignInRefused, Taken


class TenantExists(Exception):
    pass


@dataclass(frozen=True)
class AccessToken:
    token: str
    expires_in: int
    """Seconds."""


@dataclass(frozen=True)
class NewApiKey:
    id: UUID
    prefix: str
    key: str
    """The whole key, shown once; only its hash is kept."""
    created_at: datetime


async def add_user(
    connection: AsyncConnection,
    passwords: Passwords,
    tenant_id: str,
    email: str,
    password: str,
    roles: set[Role],
) -> UUID:
    """A user of the tenant, in ``connection``'s transaction; returns the new user's id."""
    user_id = uuid4()
    await users.insert_user(
        connection, user_id, tenant_id, email, await passwords.hashed(password), roles, utc_now()
    )
    return user_id


async def create_tenant(
    engine: AsyncEngine,
    passwords: Passwords,
    tenant_id: str,
    name: str,
    admin_email: str,
    admin_password: str,
) -> UUID:
    """The tenant and its first admin, in one transaction; returns the admin's id."""
    try:
        async with engine.begin() as connection:
            await users.insert_tenant(connection, tenant_id, name, utc_now())
            return await add_user(connection, passwords, tenant_id, admin_email, admin_password, {Role.ADMIN})
    except IntegrityError as error:
        raise TenantExists(f"tenant {tenant_id!r} exists already") from error


async def allow_networks(engine: AsyncEngine, tenant_id: str, networks: Sequence[str]) -> None:
    """Let the tenant's HTTP, webhook and AI nodes reach these private or loopback networks."""
    async with engine.begin() as connection:
        await network_policies.allow_networks(connection, tenant_id, networks, utc_now())


class Accounts:
    def __init__(self, engine: AsyncEngine, passwords: Passwords, tokens: Tokens) -> None:
        self._engine = engine
        self._passwords = passwords
        self._tokens = tokens

    async def caller(self, scheme: str | None, credentials: str | None) -> Principal:
        """Who sent a request with ``Authorization: <scheme> <credentials>``: the user an access token
        names, or an API key's holder (the key's last use is stamped). Raises ``InvalidCredentials``."""
        return await authenticate(scheme, credentials, self._tokens, self._engine)

    async def sign_in(self, tenant_id: str, email: str, password: str) -> AccessToken:
        """An access token for a user's email and password."""
        async with self._engine.connect() as connection:
            row = await users.user_by_email(connection, tenant_id, email)
        if row is None or row.disabled or not await self._passwords.verified(row.password_hash, password):
            raise SignInRefused("unknown tenant, email or password")
        principal = Principal(row.tenant_id, row.id, "user", frozenset(Role(r) for r in row.roles))
        return AccessToken(self._tokens.issue(principal, utc_now()), self._tokens.ttl_seconds)

    async def create_user(self, tenant_id: str, email: str, password: str, roles: set[Role]) -> Row:
        try:
            async with self._engine.begin() as connection:
                user_id = await add_user(connection, self._passwords, tenant_id, email, password, roles)
        except IntegrityError as error:
            raise Taken("a user with this email exists", FieldProblem("/body/email", "taken")) from error
        return await self._user(tenant_id, user_id)

    async def users(self, tenant_id: str) -> Sequence[Row]:
        async with self._engine.connect() as connection:
            return await users.users_of(connection, tenant_id)

    async def update_user(
        self,
        tenant_id: str,
        user_id: UUID,
        *,
        roles: Sequence[Role] | None,
        disabled: bool | None,
        password: str | None,
    ) -> Row:
        """Change what is given; what is None stays as it was."""
        password_hash = await self._passwords.hashed(password) if password is not None else None
        async with self._engine.begin() as connection:
            found = await users.change_user(
                connection, tenant_id, user_id, roles=roles, disabled=disabled, password_hash=password_hash
            )
            if not found:
                raise NotFound("user")
        return await self._user(tenant_id, user_id)

    async def create_api_key(
        self, tenant_id: str, name: str, roles: Sequence[Role], *, created_by: UUID
    ) -> NewApiKey:
        key, prefix, key_hash = new_api_key()
        key_id = uuid4()
        now = utc_now()
        async with self._engine.begin() as connection:
            await users.insert_api_key(
                connection, key_id, tenant_id, name, prefix, key_hash, roles, created_by, now
            )
        return NewApiKey(key_id, prefix, key, now)

    async def api_keys(self, tenant_id: str) -> Sequence[Row]:
        async with self._engine.connect() as connection:
            return await users.api_keys_of(connection, tenant_id)

    async def revoke_api_key(self, tenant_id: str, key_id: UUID) -> None:
        async with self._engine.begin() as connection:
            if not await users.revoke_api_key(connection, tenant_id, key_id, utc_now()):
                raise NotFound("API key")

    async def _user(self, tenant_id: str, user_id: UUID) -> Row:
        async with self._engine.connect() as connection:
            row = await users.user(connection, tenant_id, user_id)
        if row is None:
            raise NotFound("user")
        return row
