"""Creating the registry's topics on a broker (``millrace-topics``)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from millrace_common.contracts.topics import Namespace, every_topic, topic_max_message_bytes


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
    from millrace_common.platform.settings import ServiceSettings

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
