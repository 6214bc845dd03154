"""The one registry of Kafka topics and consumer groups. Nothing else spells a topic name."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass
from enum import StrEnum

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError


@dataclass(frozen=True)
class Topic:
    """A topic as the code knows it; :meth:`Namespace.topic` gives its name on the broker."""

    name: str
    partitions: int
    keyed_by: str
    dead_letter: bool = True

    @property
    def dlq(self) -> Topic:
        return Topic(f"{self.name}.dlq", 1, "the failed message's key", dead_letter=False)


RECORDS_EVENTS = Topic("records.events", 6, "record_id")
WEBHOOKS_INBOUND = Topic("webhooks.inbound", 3, "workflow_id")
RUNS_COMMANDS = Topic("runs.commands", 6, "run_id")
RUNS_EVENTS = Topic("runs.events", 6, "run_id")
NODES_RESULTS = Topic("nodes.results", 6, "run_id")
NODES_READY_AI = Topic("nodes.ready.ai", 3, "run_id")
NODES_READY_HTTP = Topic("nodes.ready.http", 3, "run_id")
NODES_READY_RECORD = Topic("nodes.ready.record", 3, "run_id")
NODES_READY_OTHER = Topic("nodes.ready.other", 3, "run_id")

ALL_TOPICS: tuple[Topic, ...] = (
    RECORDS_EVENTS,
    WEBHOOKS_INBOUND,
    RUNS_COMMANDS,
    RUNS_EVENTS,
    NODES_RESULTS,
    NODES_READY_AI,
    NODES_READY_HTTP,
    NODES_READY_RECORD,
    NODES_READY_OTHER,
)


class ConsumerGroup(StrEnum):
    TRIGGER = "trigger"
    ORCHESTRATOR = "orchestrator"
    NODE_RUNNER = "node-runner"
    APPROVAL = "approval"
    GATEWAY_LIVE = "gateway-live"


@dataclass(frozen=True)
class Namespace:
    """Maps registry entries to broker names; a non-empty prefix isolates installations and tests."""

    prefix: str = ""

    def topic(self, topic: Topic) -> str:
        return f"{self.prefix}.{topic.name}" if self.prefix else topic.name

    def group(self, group: ConsumerGroup) -> str:
        return f"{self.prefix}.{group.value}" if self.prefix else group.value


def every_topic() -> list[Topic]:
    return [t for topic in ALL_TOPICS for t in ((topic, topic.dlq) if topic.dead_letter else (topic,))]


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


async def ensure_topics(
    bootstrap: str, namespace: Namespace, *, max_message_bytes: int = 1_000_000
) -> list[str]:
    """Create every registered topic (and its dead-letter topic) that does not exist yet, each
    accepting messages of ``max_message_bytes``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        configs = {"max.message.bytes": str(topic_max_message_bytes(max_message_bytes))}
        wanted = [
            NewTopic(
                namespace.topic(t), num_partitions=t.partitions, replication_factor=1, topic_configs=configs
            )
            for t in every_topic()
            if namespace.topic(t) not in existing
        ]
        created: list[str] = []
        for new_topic in wanted:
            try:
                await admin.create_topics([new_topic])
                created.append(new_topic.name)
            except TopicAlreadyExistsError:
                continue
        return created
    finally:
        await admin.close()


def main() -> None:
    """``millrace-topics``: create the registry's topics on the configured broker, idempotently."""
    from millrace_common.settings import ServiceSettings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.parse_args()
    settings = ServiceSettings()
    created = asyncio.run(
        ensure_topics(
            settings.kafka_bootstrap,
            Namespace(settings.namespace),
            max_message_bytes=settings.kafka_max_message_bytes,
        )
    )
    print(
        f"topics: {len(created)} created, {len(every_topic()) - len(created)} already there", file=sys.stderr
    )
