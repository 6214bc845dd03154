"""Use cases of topic grants (the admin API, ``millrace-admin grants add-topic``...): the grants are
rows in PostgreSQL, which the services check; the broker is brought in line as ACLs of the services'
principal (``domain.topic_grants``)."""

from __future__ import annotations

from dataclasses import dataclass

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import Namespace
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import producer_grants, topic_grants
from millrace_gateway.adapters.kafka_tools import KafkaToolFailed, KafkaTools
from millrace_gateway.domain.grants import Plan
from millrace_gateway.domain.refusals import NotFound
from millrace_gateway.domain.topic_grants import (
    TopicAccess,
    TopicGrant,
    refuse_platform_topic,
    topic_acls,
)


@dataclass(frozen=True)
class TopicApplied:
    """What a grant or revocation did on the broker: the ACL changes, or why they were not made
    (``error``: the broker refused or was away; None with ``applied`` False: applying is off)."""

    plan: Plan
    applied: bool
    error: str | None = None


class TopicGrantDesk:
    def __init__(
        self,
        engine: AsyncEngine,
        tools: KafkaTools,
        namespace: Namespace,
        *,
        services_principal: str,
        apply_acls: bool,
    ) -> None:
        self._engine = engine
        self._tools = tools
        self._namespace = namespace
        self._principal = services_principal
        self._apply = apply_acls

    async def add(self, grant: TopicGrant, *, by: str, pointer: str = "/body/topic") -> TopicApplied:
        """Record the grant, then add the ACLs it means."""
        refuse_platform_topic(grant.topic, self._namespace, pointer=pointer)
        async with self._engine.begin() as connection:
            if not await producer_grants.tenant_exists(connection, grant.tenant_id):
                raise NotFound(f"tenant {grant.tenant_id!r}")
            await topic_grants.add(connection, grant, by=by, now=utc_now())
        steps = Plan(add=tuple(sorted(topic_acls([grant], self._principal, self._namespace))), remove=())
        return await self._carry_out(steps)

    async def revoke(self, grant: TopicGrant) -> TopicApplied:
        """Remove the grant, then the ACLs no remaining grant means."""
        async with self._engine.begin() as connection:
            if not await topic_grants.revoke(connection, grant):
                raise NotFound(
                    f"a {grant.access.value} grant of {grant.topic!r} to tenant {grant.tenant_id!r}"
                )
            remaining = [topic_grants.grant_of(row) for row in await topic_grants.rows(connection)]
        gone = topic_acls([grant], self._principal, self._namespace) - topic_acls(
            remaining, self._principal, self._namespace
        )
        return await self._carry_out(Plan(add=(), remove=tuple(sorted(gone))))

    async def listed(self, *, tenant_id: str | None = None, topic: str | None = None) -> list[Row]:
        async with self._engine.connect() as connection:
            return await topic_grants.rows(connection, tenant_id=tenant_id, topic=topic)

    async def granted(self, tenant_id: str) -> dict[TopicAccess, frozenset[str]]:
        async with self._engine.connect() as connection:
            return await topic_grants.granted(connection, tenant_id)

    async def _carry_out(self, steps: Plan) -> TopicApplied:
        if not self._apply:
            return TopicApplied(steps, applied=False)
        try:
            for acl in steps.remove:
                await self._tools.remove(acl)
            for acl in steps.add:
                await self._tools.add(acl)
        except (KafkaToolFailed, OSError) as error:
            return TopicApplied(steps, applied=False, error=str(error))
        return TopicApplied(steps, applied=True)
