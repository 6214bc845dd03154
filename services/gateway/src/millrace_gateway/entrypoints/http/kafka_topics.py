"""Kafka topic grants: platform operators (admins of ``MILLRACE_OPERATOR_TENANT``) grant a tenant an
outside topic to consume (Kafka triggers) or produce to (publish nodes), list and revoke grants; any
signed-in caller lists its own tenant's granted topics (the editor's topic lists)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from millrace_common.contracts.messages.envelope import TenantId
from millrace_common.language.workflow_configs.base import KafkaTopicName
from millrace_common.platform.problems import Problem, declared
from pydantic import BaseModel, Field

from millrace_gateway.adapters.security import Principal
from millrace_gateway.domain.topic_grants import TopicAccess, TopicGrant
from millrace_gateway.entrypoints.http.deps import Reader, SettingsDep, TenantAdmin, TopicGrantsDep

router = APIRouter(tags=["kafka"])


async def _platform_operator(admin: TenantAdmin, settings: SettingsDep) -> Principal:
    if settings.operator_tenant is None or admin.tenant_id != settings.operator_tenant:
        raise Problem(
            403,
            "forbidden",
            "granting Kafka topics is for platform operators (the admins of the installation's operator"
            " tenant, MILLRACE_OPERATOR_TENANT)",
        )
    return admin


PlatformOperator = Annotated[Principal, Depends(_platform_operator)]


class TopicGrantIn(BaseModel):
    tenant_id: TenantId
    topic: KafkaTopicName
    access: TopicAccess = Field(description="consume (Kafka triggers) or produce (publish nodes)")


class TopicGrantOut(BaseModel):
    tenant_id: str
    topic: str
    access: TopicAccess
    created_by: str
    created_at: datetime


class AclChange(BaseModel):
    principal: str
    resource: str = Field(description="<TOPIC|GROUP>:<LITERAL>:<name>")
    operation: str


class TopicGrantApplied(BaseModel):
    grant: TopicGrantIn
    acls_applied: bool = Field(
        description="Whether the broker's ACLs were changed; false when MILLRACE_KAFKA_GRANT_ACLS is off"
        " or the broker refused (acl_error): the grant holds, 'millrace-admin grants sync' applies it"
    )
    acl_error: str | None
    added: list[AclChange]
    removed: list[AclChange]


class TopicGrantPage(BaseModel):
    items: list[TopicGrantOut]


class GrantedTopic(BaseModel):
    topic: str
    access: list[TopicAccess]


class GrantedTopics(BaseModel):
    items: list[GrantedTopic]


def _applied(grant: TopicGrant, applied) -> TopicGrantApplied:  # type: ignore[no-untyped-def]
    def changes(acls) -> list[AclChange]:  # type: ignore[no-untyped-def]
        return [
            AclChange(
                principal=a.principal,
                resource=f"{a.resource_type}:{a.pattern_type}:{a.name}",
                operation=a.operation,
            )
            for a in acls
        ]

    return TopicGrantApplied(
        grant=TopicGrantIn(tenant_id=grant.tenant_id, topic=grant.topic, access=grant.access),
        acls_applied=applied.applied,
        acl_error=applied.error,
        added=changes(applied.plan.add),
        removed=changes(applied.plan.remove),
    )


@router.post(
    "/api/v1/admin/kafka-grants",
    status_code=201,
    response_model=TopicGrantApplied,
    responses=declared(
        not_found="no such tenant",
        unprocessable_entity="a topic of the installation's own (platform_topic) or a malformed name",
    ),
)
async def grant_topic(
    body: TopicGrantIn, operator: PlatformOperator, desk: TopicGrantsDep
) -> TopicGrantApplied:
    """Grant a tenant a topic, and apply the ACLs it means (granting twice changes nothing)."""
    grant = TopicGrant(body.tenant_id, body.topic, body.access)
    by = f"{operator.kind}:{operator.subject}@{operator.tenant_id}"
    return _applied(grant, await desk.add(grant, by=by))


@router.get("/api/v1/admin/kafka-grants", response_model=TopicGrantPage)
async def list_topic_grants(
    _: PlatformOperator,
    desk: TopicGrantsDep,
    tenant_id: TenantId | None = None,
    topic: Annotated[str | None, Query(min_length=1, max_length=249)] = None,
) -> TopicGrantPage:
    """Every topic grant, or one tenant's, or one topic's."""
    rows = await desk.listed(tenant_id=tenant_id, topic=topic)
    return TopicGrantPage(items=[TopicGrantOut.model_validate(row, from_attributes=True) for row in rows])


@router.delete(
    "/api/v1/admin/kafka-grants/{tenant_id}/{topic}/{access}",
    status_code=200,
    response_model=TopicGrantApplied,
    responses=declared(not_found="the tenant holds no such grant"),
)
async def revoke_topic(
    tenant_id: TenantId,
    topic: KafkaTopicName,
    access: TopicAccess,
    _: PlatformOperator,
    desk: TopicGrantsDep,
) -> TopicGrantApplied:
    """Revoke a grant, and remove the ACLs no remaining grant means. Workflows that use the topic stay
    as they are: their trigger stops reading it, their publish nodes fail with ``topic_not_granted``."""
    grant = TopicGrant(tenant_id, topic, access)
    return _applied(grant, await desk.revoke(grant))


@router.get("/api/v1/kafka/topics", response_model=GrantedTopics)
async def granted_topics(caller: Reader, desk: TopicGrantsDep) -> GrantedTopics:
    """The caller's tenant's granted topics, each with what it may do with it."""
    granted = await desk.granted(caller.tenant_id)
    topics = sorted({topic for topics in granted.values() for topic in topics})
    return GrantedTopics(
        items=[
            GrantedTopic(topic=topic, access=[a for a in TopicAccess if topic in granted[a]])
            for topic in topics
        ]
    )
