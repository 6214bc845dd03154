"""Reading Kafka the way an operator would: a consumer group's lag on a topic, and what landed on a
dead-letter topic."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.settings import KafkaClientSettings


def kafka_settings(bootstrap: str) -> KafkaClientSettings:
    """The brokers at ``bootstrap``, reached as the services reach them: the security settings
    (``MILLRACE_KAFKA_SECURITY_PROTOCOL``, SASL user, CA file...) come from the same environment, so
    the suite runs against a secured cluster as against the plain test broker."""
    return KafkaClientSettings(kafka_bootstrap=bootstrap)


def kafka_client(bootstrap: str) -> dict[str, Any]:
    """Keyword arguments for any aiokafka client of a test or benchmark: the bootstrap servers and
    ``millrace_common.platform.kafka_security.client_options`` of :func:`kafka_settings`."""
    return {"bootstrap_servers": bootstrap, **client_options(kafka_settings(bootstrap))}


def _sync(coroutine: Any) -> Any:
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, coroutine).result()


def group_lag(bootstrap: str, group: str, topic: str) -> int:
    """Messages of ``topic`` the group has not committed past (end offsets minus committed)."""

    async def read() -> int:
        admin = AIOKafkaAdminClient(**kafka_client(bootstrap))
        consumer = AIOKafkaConsumer(**kafka_client(bootstrap))
        await admin.start()
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            if not partitions:
                await consumer.topics()  # refresh metadata once
                partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
            ends = await consumer.end_offsets(partitions)
            committed = await admin.list_consumer_group_offsets(group, partitions=partitions)
            return sum(
                ends[tp] - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0)
                for tp in partitions
            )
        finally:
            await consumer.stop()
            await admin.close()

    return _sync(read())


def read_all(bootstrap: str, topic: str, timeout_ms: int = 2000) -> list[dict]:
    """Every message on ``topic`` so far, as JSON."""

    async def read() -> list[dict]:
        consumer = AIOKafkaConsumer(
            topic, **kafka_client(bootstrap), auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            found: list[dict] = []
            while True:
                polled = await consumer.getmany(timeout_ms=timeout_ms)
                if not polled:
                    return found
                for records in polled.values():
                    found.extend(json.loads(record.value) for record in records)
        finally:
            await consumer.stop()

    return _sync(read())


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """A topic's partitions as the broker has them (dead-letter topics have as many as the settings say)."""
    admin = AIOKafkaAdminClient(**kafka_client(bootstrap))
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
        return sorted(p["partition"] for p in described["partitions"])
    finally:
        await admin.close()
