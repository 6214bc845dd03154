"""What a tenant configured: its network policy, named credentials and AI settings. Secrets are
decrypted here, only in memory, only for the call that needs them, and never logged."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.platform.secrets import SecretBox, SecretsUnavailable
from millrace_common.platform.tables import credentials, tenant_ai_settings, tenant_network_policies
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_node_runner.domain.addresses import TargetPolicy
from millrace_node_runner.domain.ai import AiSettings
from millrace_node_runner.domain.http import CREDENTIAL_SECRET, CredentialSecret
from millrace_node_runner.domain.outcomes import NodeRefused, failed


@dataclass(frozen=True)
class AiEndpoint:
    settings: AiSettings
    api_key: str | None


MAX_CACHED_POLICIES = 10_000


class _ReadAbandoned(Exception):
    """The node reading a tenant's policy for the others was cancelled before it finished."""


@asynccontextmanager
async def reading(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection for one-statement reads, in autocommit: no BEGIN and ROLLBACK round trips."""
    async with engine.connect() as connection:
        yield await connection.execution_options(isolation_level="AUTOCOMMIT")


class TenantConfig:
    def __init__(
        self,
        engine: AsyncEngine,
        box: SecretBox | None,
        *,
        policy_cache_seconds: float = 0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._box = box
        self._policy_cache_seconds = policy_cache_seconds
        self._monotonic = monotonic
        self._policies: dict[str, tuple[float, TargetPolicy]] = {}
        self._loading: dict[str, asyncio.Future[TargetPolicy]] = {}

    async def network_policy(self, tenant_id: str) -> TargetPolicy:
        """The default, for a tenant without a row, is the public internet only. Policies are kept
        for ``policy_cache_seconds``, so a change takes effect within that time."""
        if (policy := self._cached(tenant_id)) is not None:
            return policy
        if self._policy_cache_seconds <= 0:
            return await self._load_policy(tenant_id)
        while (loading := self._loading.get(tenant_id)) is not None:
            # Many nodes of one tenant arrive together: one of them reads, the others wait for it.
            try:
                return await asyncio.shield(loading)
            except _ReadAbandoned:
                # The reader was cancelled (its node timed out): the first waiter to wake reads.
                if (policy := self._cached(tenant_id)) is not None:
                    return policy
        now = self._monotonic()
        loading = self._loading[tenant_id] = asyncio.get_running_loop().create_future()
        try:
            policy = await self._load_policy(tenant_id)
        except BaseException as error:
            shared = error if isinstance(error, Exception) else _ReadAbandoned()
            loading.set_exception(shared)
            loading.exception()  # retrieved here, so a load nobody else waited for is not reported
            raise
        finally:
            del self._loading[tenant_id]
        loading.set_result(policy)
        if len(self._policies) >= MAX_CACHED_POLICIES:
            self._policies.clear()
        self._policies[tenant_id] = (now + self._policy_cache_seconds, policy)
        return policy

    def _cached(self, tenant_id: str) -> TargetPolicy | None:
        cached = self._policies.get(tenant_id)
        return cached[1] if cached is not None and cached[0] > self._monotonic() else None

    async def _load_policy(self, tenant_id: str) -> TargetPolicy:
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(
                        tenant_network_policies.c.allow_private_targets,
                        tenant_network_policies.c.allowed_networks,
                    ).where(tenant_network_policies.c.tenant_id == tenant_id)
                )
            ).first()
        if row is None:
            return TargetPolicy()
        return TargetPolicy.from_settings(row.allow_private_targets, row.allowed_networks or ())

    async def credential(self, tenant_id: str, name: str, kind: str) -> CredentialSecret:
        """Raises :class:`NodeRefused` when the credential is missing, of another kind or unreadable."""
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(credentials.c.kind, credentials.c.ciphertext).where(
                        credentials.c.tenant_id == tenant_id, credentials.c.name == name
                    )
                )
            ).first()
        if row is None:
            raise NodeRefused(
                failed(NodeErrorType.CREDENTIAL_NOT_FOUND, f"no credential named {name!r}", retryable=False)
            )
        if row.kind != kind:
            raise NodeRefused(
                failed(
                    NodeErrorType.CREDENTIAL_MISMATCH,
                    f"the credential {name!r} is a {row.kind} credential; this node needs a {kind} one",
                    retryable=False,
                )
            )
        try:
            return CREDENTIAL_SECRET.validate_json(self._open(row.ciphertext))
        except ValidationError as error:
            raise NodeRefused(
                failed(
                    NodeErrorType.CREDENTIAL_UNREADABLE,
                    f"the credential {name!r} is not in a known shape",
                    retryable=False,
                )
            ) from error

    async def ai_endpoint(self, tenant_id: str) -> AiEndpoint:
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(tenant_ai_settings).where(tenant_ai_settings.c.tenant_id == tenant_id)
                )
            ).first()
        if row is None:
            raise NodeRefused(
                failed(
                    NodeErrorType.AI_NOT_CONFIGURED,
                    "the tenant has no AI settings (PUT /api/v1/settings/ai)",
                    retryable=False,
                )
            )
        settings = AiSettings(
            base_url=row.base_url,
            model=row.model,
            temperature=row.temperature,
            max_tokens=row.max_tokens,
            monthly_token_budget=row.monthly_token_budget,
            allow_private_endpoint=row.allow_private_endpoint,
        )
        api_key = self._open(row.api_key_ciphertext) if row.api_key_ciphertext is not None else None
        return AiEndpoint(settings, api_key)

    def _open(self, ciphertext: bytes) -> str:
        if self._box is None:
            raise NodeRefused(
                failed(
                    NodeErrorType.SECRETS_UNAVAILABLE,
                    "the runner has no MILLRACE_ENCRYPTION_KEY to read secrets with",
                    retryable=False,
                )
            )
        try:
            return self._box.open(ciphertext)
        except SecretsUnavailable as error:
            raise NodeRefused(
                failed(NodeErrorType.SECRETS_UNAVAILABLE, str(error), retryable=False)
            ) from error
