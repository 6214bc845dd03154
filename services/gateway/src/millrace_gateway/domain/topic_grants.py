"""Topic grants: which outside Kafka topic a tenant may read with Kafka triggers (``consume``) and write
with publish nodes (``produce``), and the broker ACLs they mean. Pure.

The services read and write those topics, so a grant is applied as ACLs of the services' own principal
(``User:<MILLRACE_KAFKA_SASL_USERNAME>``, ``User:ANONYMOUS`` without SASL): READ (and DESCRIBE) of the
topic and READ of the trigger service's Kafka-trigger consumer group for ``consume``, WRITE (and
DESCRIBE) for ``produce``. That a tenant reads and writes only its granted topics is enforced by the
services against these rows (on saving a workflow, when a trigger consumes, when a node publishes);
the ACLs make the broker let the services do what the grants allow, and nothing on a topic no grant
names. A topic of this installation's own (``runs.commands``, a tenant's ingress topic, ...) cannot be
granted: that would hand a tenant the platform's own messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from millrace_common.contracts.topics import ALL_TOPICS, ConsumerGroup, Namespace
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform.refusals import FieldProblem, Refused

from millrace_gateway.domain.grants import Acl
from millrace_gateway.domain.refusals import InvalidDefinition


class TopicAccess(StrEnum):
    CONSUME = "consume"
    """Kafka triggers of the tenant's workflows may read the topic."""
    PRODUCE = "produce"
    """Publish nodes of the tenant's workflows may write the topic."""


@dataclass(frozen=True, order=True)
class TopicGrant:
    tenant_id: str
    topic: str
    access: TopicAccess


class PlatformTopic(Refused):
    status = 422
    code = "platform_topic"


def services_principal(sasl_username: str | None) -> str:
    """The principal the services connect as: their SASL user, or ``User:ANONYMOUS`` without SASL."""
    return f"User:{sasl_username}" if sasl_username else "User:ANONYMOUS"


def refuse_platform_topic(topic: str, namespace: Namespace, *, pointer: str) -> None:
    """A topic of this installation (in its namespace, or a tenant's own per-tenant topic) is refused."""
    own = {namespace.topic(t) for t in ALL_TOPICS if not (t.per_tenant or t.granted)}
    own |= {namespace.topic(t.dlq) for t in ALL_TOPICS if t.dead_letter}
    family = any(namespace.tenant_of(t, topic) is not None for t in ALL_TOPICS if t.per_tenant)
    if topic in own or family:
        raise PlatformTopic(
            f"{topic!r} is one of this installation's own topics; only outside topics can be granted",
            FieldProblem(pointer, "a platform topic"),
        )


def topic_acls(grants: Iterable[TopicGrant], principal: str, namespace: Namespace) -> frozenset[Acl]:
    """The services' ACLs that the topic grants mean (each topic LITERAL, never by prefix)."""
    meant: set[Acl] = set()
    for grant in grants:
        operation = "READ" if grant.access is TopicAccess.CONSUME else "WRITE"
        meant.add(Acl(principal, "TOPIC", "LITERAL", grant.topic, operation))
        meant.add(Acl(principal, "TOPIC", "LITERAL", grant.topic, "DESCRIBE"))
        if grant.access is TopicAccess.CONSUME:
            meant.add(
                Acl(principal, "GROUP", "LITERAL", namespace.group(ConsumerGroup.TRIGGER_KAFKA), "READ")
            )
    return frozenset(meant)


def managed_by_topic_grants(acl: Acl, principal: str, namespace: Namespace) -> bool:
    """Whether the topic grants decide ``acl``: the services' LITERAL ACLs on a topic outside this
    installation's own, and on the Kafka-trigger consumer group."""
    if acl.principal != principal or acl.pattern_type != "LITERAL":
        return False
    if acl.resource_type == "GROUP":
        return acl.name == namespace.group(ConsumerGroup.TRIGGER_KAFKA)
    if acl.resource_type != "TOPIC" or acl.operation not in ("READ", "WRITE", "DESCRIBE"):
        return False
    try:
        refuse_platform_topic(acl.name, namespace, pointer="")
    except PlatformTopic:
        return False
    return not (namespace.prefix and acl.name.startswith(f"{namespace.prefix}."))


def ungranted_topics(
    definition: WorkflowDefinition, granted: Mapping[TopicAccess, frozenset[str]]
) -> list[FieldProblem]:
    """The Kafka triggers and publish nodes of ``definition`` whose topic the tenant was not granted
    (``granted``: the tenant's topics per access), each with its pointer in the request body."""
    problems = []
    for index, node in enumerate(definition.nodes):
        topic = getattr(node.data, "topic", None)
        if node.type == "trigger" and getattr(node.data, "kind", None) == "kafka":
            access = TopicAccess.CONSUME
        elif node.type == "kafka_publish":
            access = TopicAccess.PRODUCE
        else:
            continue
        if topic not in granted.get(access, frozenset()):
            problems.append(
                FieldProblem(
                    f"/definition/nodes/{index}/data/topic",
                    f"the tenant was not granted the topic {topic!r} to {access.value}"
                    " (a platform operator grants topics)",
                )
            )
    return problems


def refuse_ungranted_topics(
    definition: WorkflowDefinition, granted: Mapping[TopicAccess, frozenset[str]]
) -> None:
    problems = ungranted_topics(definition, granted)
    if problems:
        raise InvalidDefinition(
            f"the workflow uses {len(problems)} Kafka topic(s) the tenant was not granted", *problems
        )


def uses_topics(definition: WorkflowDefinition) -> bool:
    return any(
        node.type == "kafka_publish"
        or (node.type == "trigger" and getattr(node.data, "kind", None) == "kafka")
        for node in definition.nodes
    )
