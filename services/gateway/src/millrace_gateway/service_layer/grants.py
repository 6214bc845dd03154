"""Use cases of ``millrace-admin grants`` and ``producers``: the grants are rows in PostgreSQL; the
broker enforces them as ACLs, which these use cases bring in line with the rows (``domain.grants``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import RECORDS_INGRESS, Namespace
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import producer_grants, topic_grants
from millrace_gateway.adapters.kafka_tools import KafkaTools
from millrace_gateway.domain.grants import (
    Acl,
    Grant,
    GrantKind,
    Plan,
    acls_of,
    granting,
    plan,
    revoking,
)
from millrace_gateway.domain.refusals import NotFound
from millrace_gateway.domain.topic_grants import managed_by_topic_grants, topic_acls

TopicMaker = Callable[[str], Awaitable[bool]]
"""Creates a tenant's ingress topic unless it exists (True when it made it)."""


@dataclass(frozen=True)
class Applied:
    plan: Plan
    topic_created: bool = False


class GrantDesk:
    def __init__(
        self,
        engine: AsyncEngine,
        tools: KafkaTools,
        namespace: Namespace,
        make_topic: TopicMaker,
        *,
        services_principal: str = "User:ANONYMOUS",
    ) -> None:
        self._engine = engine
        self._tools = tools
        self._namespace = namespace
        self._make_topic = make_topic
        self._services_principal = services_principal

    async def add(self, grant: Grant, *, by: str) -> Applied:
        """Record the grant, create the tenant's topic it names, and apply the principal's ACLs."""
        async with self._engine.begin() as connection:
            if not await producer_grants.tenant_exists(connection, grant.tenant_id):
                raise NotFound(f"no tenant {grant.tenant_id!r}")
            await producer_grants.add(connection, grant, by=by, now=utc_now())
        created = False
        if grant.kind is GrantKind.RECORDS_INGRESS:
            created = await self._make_topic(grant.tenant_id)
        steps = granting(grant, self._namespace)
        await self._carry_out(steps)
        return Applied(steps, created)

    async def revoke(self, grant: Grant) -> Applied:
        """Remove the grant and the ACLs that no grant left still means."""
        async with self._engine.begin() as connection:
            if not await producer_grants.revoke(connection, grant):
                raise NotFound(
                    f"{grant.principal} holds no {grant.kind.value} grant of tenant {grant.tenant_id!r}"
                )
        remaining = [producer_grants.grant_of(row) for row in await self.listed()]
        steps = revoking(grant, remaining, self._namespace)
        await self._carry_out(steps)
        return Applied(steps)

    async def listed(self, *, principal: str | None = None, tenant_id: str | None = None) -> list[Row]:
        async with self._engine.connect() as connection:
            return await producer_grants.rows(connection, principal=principal, tenant_id=tenant_id)

    async def _meant(self) -> frozenset[Acl]:
        rows = await self.listed()
        async with self._engine.connect() as connection:
            topics = [topic_grants.grant_of(row) for row in await topic_grants.rows(connection)]
        return acls_of((producer_grants.grant_of(row) for row in rows), self._namespace) | topic_acls(
            topics, self._services_principal, self._namespace
        )

    async def sync(self, *, dry_run: bool = False) -> Plan:
        """Bring every managed ACL (of producer and topic grants) in line with the grants (idempotent:
        a second run changes nothing)."""
        principal, namespace = self._services_principal, self._namespace
        steps = plan(
            await self._meant(),
            await self._tools.acls(),
            namespace,
            also_managed=lambda acl: managed_by_topic_grants(acl, principal, namespace),
        )
        if not dry_run:
            await self._carry_out(steps)
        return steps

    async def _carry_out(self, steps: Plan) -> None:
        for acl in steps.remove:
            await self._tools.remove(acl)
        for acl in steps.add:
            await self._tools.add(acl)

    async def create_producer(self, user: str, password: str, tenant_id: str, *, by: str) -> Applied:
        """A SCRAM user for an outside producer, granted ``tenant_id``'s record ingress."""
        async with self._engine.connect() as connection:
            if not await producer_grants.tenant_exists(connection, tenant_id):
                raise NotFound(f"no tenant {tenant_id!r}")
        await self._tools.set_scram_password(user, password)
        return await self.add(Grant(f"User:{user}", tenant_id, GrantKind.RECORDS_INGRESS), by=by)


def ingress_topic(namespace: Namespace, tenant_id: str) -> str:
    return namespace.tenant_topic(RECORDS_INGRESS, tenant_id)
