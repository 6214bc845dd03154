"""The one registry of Kafka topics and consumer groups. Nothing else spells a topic name. (Creating
them on a broker is ``millrace_common.platform.topic_admin``.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from millrace_common.contracts.tenant_topics import tenant_from_segment, tenant_segment


@dataclass(frozen=True)
class Topic:
    """A topic as the code knows it; :meth:`Namespace.topic` gives its name on the broker."""

    name: str
    partitions: int
    keyed_by: str
    dead_letter: bool = True
    """Whether the topic has a ``<topic>.dlq`` (every topic but the dead-letter topics themselves)."""
    holds_dead_letters: bool = False
    """A ``<topic>.dlq``: its partitions and retention are settings (``MILLRACE_DEAD_LETTER_*``), not
    ``partitions``."""
    per_tenant: bool = False
    """A family of topics, one per tenant (``tenant.<tenant>.<name>``, :meth:`Namespace.tenant_topic`),
    which outside producers write under a broker ACL of their tenant; the family shares one
    ``<name>.dlq``. ``millrace-topics`` creates only that; ``millrace-admin producers create`` a
    tenant's topic."""
    granted: bool = False
    """Stands for every outside topic a tenant was granted (``topic_grants``), whatever its name and
    outside the namespace: the topics of Kafka triggers. ``millrace-topics`` creates only its ``.dlq``,
    where messages of those topics that cannot start a run go."""

    @property
    def dlq(self) -> Topic:
        return Topic(
            f"{self.name}.dlq", 1, "the failed message's key", dead_letter=False, holds_dead_letters=True
        )


RECORDS_EVENTS = Topic("records.events", 6, "record_id")
"""The platform's own record events (gateway, node runner); outside producers write their tenant's
``RECORDS_INGRESS`` topic instead (``docs/triggers.md``)."""
RECORDS_INGRESS = Topic("records.ingress", 6, "record_id", per_tenant=True)
KAFKA_GRANTED = Topic("kafka.granted", 1, "the producer's own key", granted=True)
"""The granted outside topics Kafka triggers read (``docs/triggers.md``): one entry for all of them,
for their shared dead-letter topic."""
RUNS_COMMANDS = Topic("runs.commands", 6, "run_id")
RUNS_EVENTS = Topic("runs.events", 6, "run_id")
RUNS_APPROVALS = Topic("runs.approvals", 6, "run_id")
NODES_RESULTS = Topic("nodes.results", 6, "run_id")
NODES_READY_AI = Topic("nodes.ready.ai", 3, "run_id")
NODES_READY_HTTP = Topic("nodes.ready.http", 3, "run_id")
NODES_READY_RECORD = Topic("nodes.ready.record", 3, "run_id")
NODES_READY_OTHER = Topic("nodes.ready.other", 3, "run_id")
NODES_READY_CODE = Topic("nodes.ready.code", 3, "run_id")
NODES_TEST_RESULTS = Topic("nodes.test_results", 3, "run_id")

ALL_TOPICS: tuple[Topic, ...] = (
    RECORDS_EVENTS,
    RECORDS_INGRESS,
    KAFKA_GRANTED,
    RUNS_COMMANDS,
    RUNS_EVENTS,
    RUNS_APPROVALS,
    NODES_RESULTS,
    NODES_READY_AI,
    NODES_READY_HTTP,
    NODES_READY_RECORD,
    NODES_READY_OTHER,
    NODES_READY_CODE,
    NODES_TEST_RESULTS,
)


class ConsumerGroup(StrEnum):
    TRIGGER = "trigger"
    TRIGGER_KAFKA = "trigger-kafka"
    """The trigger service's group on the granted outside topics (Kafka triggers)."""
    ORCHESTRATOR = "orchestrator"
    NODE_RUNNER = "node-runner"
    APPROVAL = "approval"
    GATEWAY_LIVE = "gateway-live"
    GATEWAY_DEAD_LETTERS = "gateway-dead-letters"


@dataclass(frozen=True)
class Namespace:
    """Maps registry entries to broker names; a non-empty prefix isolates installations and tests."""

    prefix: str = ""

    def topic(self, topic: Topic) -> str:
        return f"{self.prefix}.{topic.name}" if self.prefix else topic.name

    def group(self, group: ConsumerGroup) -> str:
        return f"{self.prefix}.{group.value}" if self.prefix else group.value

    def tenant_topic(self, topic: Topic, tenant_id: str) -> str:
        """The broker name of ``tenant_id``'s topic of a per-tenant family: ``tenant.<tenant>.<name>``
        (the tenant id written as :func:`tenant_segment` writes it)."""
        assert topic.per_tenant, f"{topic.name} is one topic, not one per tenant"
        name = f"tenant.{tenant_segment(tenant_id)}.{topic.name}"
        return f"{self.prefix}.{name}" if self.prefix else name

    def tenant_pattern(self, topic: Topic) -> str:
        """A regular expression that matches the broker names of the family's topics, and only them;
        its one group is the tenant segment."""
        head = re.escape(f"{self.prefix}.") if self.prefix else ""
        return rf"{head}tenant\.([A-Za-z0-9_-]+)\.{re.escape(topic.name)}"

    def tenant_of(self, topic: Topic, name: str) -> str | None:
        """The tenant whose topic of the family ``name`` is, or None when it is none of them."""
        match = re.fullmatch(self.tenant_pattern(topic), name)
        return tenant_from_segment(match.group(1)) if match else None


def every_topic() -> list[Topic]:
    """The topics ``millrace-topics`` creates: every topic and its ``.dlq``; of a per-tenant family,
    only the ``.dlq`` (a tenant's topic comes with its first producer)."""
    return [
        t
        for topic in ALL_TOPICS
        for t in ((topic, topic.dlq) if topic.dead_letter else (topic,))
        if not (t.per_tenant or t.granted)
    ]


def dead_letter_topics() -> list[Topic]:
    """Every ``<topic>.dlq``."""
    return [topic.dlq for topic in ALL_TOPICS if topic.dead_letter]


def source_of(dead_letter_topic: Topic) -> Topic:
    """The registered topic whose dead letters ``dead_letter_topic`` holds."""
    for topic in ALL_TOPICS:
        if topic.dead_letter and topic.dlq == dead_letter_topic:
            return topic
    raise LookupError(f"{dead_letter_topic.name} holds no registered topic's dead letters")


KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
"""Kafka's default ``max.message.bytes``: a record batch of that many bytes, overhead included."""

RECORD_OVERHEAD_BYTES = 4096
"""What a record batch adds around one message (batch and record headers, key, headers), generously."""


def producer_max_request_bytes(max_message_bytes: int) -> int:
    """A producer's ``max_request_size`` that lets a message of ``max_message_bytes`` through."""
    return max_message_bytes + RECORD_OVERHEAD_BYTES


def topic_max_message_bytes(max_message_bytes: int) -> int:
    """The ``max.message.bytes`` a topic needs so that a message of ``max_message_bytes`` fits."""
    return max(KAFKA_DEFAULT_MAX_MESSAGE_BYTES, max_message_bytes + RECORD_OVERHEAD_BYTES)
