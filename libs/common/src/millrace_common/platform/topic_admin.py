"""Creating the registry's topics on a broker (``millrace-topics``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import TopicAlreadyExistsError

from millrace_common.contracts.topics import Namespace, Topic, every_topic, topic_max_message_bytes
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.settings import KafkaClientSettings

THIRTY_DAYS_MS = 30 * 24 * 3600 * 1000


@dataclass(frozen=True)
class DeadLetterTopics:
    """How the ``<topic>.dlq`` topics are made: their own partition count and retention (settings
    ``MILLRACE_DEAD_LETTER_PARTITIONS`` and ``MILLRACE_DEAD_LETTER_RETENTION_MS``)."""

    partitions: int = 3
    retention_ms: int = THIRTY_DAYS_MS


@dataclass(frozen=True)
class TopicShape:
    partitions: int
    configs: dict[str, str]


def shape_of(
    topic: Topic, *, max_message_bytes: int, dead_letters: DeadLetterTopics, min_insync_replicas: int = 1
) -> TopicShape:
    """The partitions and topic configs ``topic`` is created with."""
    configs = {
        "max.message.bytes": str(topic_max_message_bytes(max_message_bytes)),
        "min.insync.replicas": str(min_insync_replicas),
    }
    if topic.holds_dead_letters:
        return TopicShape(
            dead_letters.partitions, {**configs, "retention.ms": str(dead_letters.retention_ms)}
        )
    return TopicShape(topic.partitions, configs)


async def ensure_topics(
    kafka: KafkaClientSettings,
    namespace: Namespace,
    *,
    max_message_bytes: int = 1_000_000,
    dead_letters: DeadLetterTopics = DeadLetterTopics(),
) -> list[str]:
    """Create every registered topic (and its dead-letter topic) that does not exist yet, each
    accepting messages of ``max_message_bytes``. Dead-letter topics that exist already are grown to
    their partition count and given their retention (a topic's partitions can grow, never shrink).
    Topics get ``kafka``'s replication factor and ``min.insync.replicas``."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka.kafka_bootstrap, request_timeout_ms=30_000, **client_options(kafka)
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        shapes = {
            namespace.topic(t): (
                t,
                shape_of(
                    t,
                    max_message_bytes=max_message_bytes,
                    dead_letters=dead_letters,
                    min_insync_replicas=kafka.kafka_min_insync_replicas,
                ),
            )
            for t in every_topic()
        }
        created: list[str] = []
        for name, (_, shape) in shapes.items():
            if name in existing:
                continue
            try:
                await admin.create_topics(
                    [
                        NewTopic(
                            name,
                            shape.partitions,
                            replication_factor=kafka.kafka_replication_factor,
                            topic_configs=shape.configs,
                        )
                    ]
                )
                created.append(name)
            except TopicAlreadyExistsError:
                continue
        kept = {
            name: shape for name, (t, shape) in shapes.items() if t.holds_dead_letters and name in existing
        }
        await _reshape_dead_letter_topics(admin, kept)
        return created
    finally:
        await admin.close()


async def _reshape_dead_letter_topics(admin: AIOKafkaAdminClient, shapes: dict[str, TopicShape]) -> None:
    if not shapes:
        return
    described = await admin.describe_topics(list(shapes))
    grow = {
        topic["topic"]: NewPartitions(shapes[topic["topic"]].partitions)
        for topic in described
        if len(topic["partitions"]) < shapes[topic["topic"]].partitions
    }
    if grow:
        await admin.create_partitions(grow)
    # alter_configs replaces a topic's whole set of configs, so the shape names every one it keeps.
    await admin.alter_configs(
        [
            ConfigResource(ConfigResourceType.TOPIC, name, configs=shape.configs)
            for name, shape in shapes.items()
        ]
    )


def main() -> None:
    """``millrace-topics``: create the registry's topics on the configured broker, idempotently."""
    from millrace_common.platform.environment import load_settings
    from millrace_common.platform.settings import ServiceSettings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.parse_args()
    settings = load_settings(ServiceSettings, "millrace-topics")
    created = asyncio.run(
        ensure_topics(
            settings,
            Namespace(settings.namespace),
            max_message_bytes=settings.kafka_max_message_bytes,
            dead_letters=DeadLetterTopics(settings.dead_letter_partitions, settings.dead_letter_retention_ms),
        )
    )
    print(
        f"topics: {len(created)} created, {len(every_topic()) - len(created)} already there", file=sys.stderr
    )
