"""The publish node's Kafka producer and the tenant's topic grants.

A producer of its own, not the process's (``millrace_common.platform.producer``): a tenant's outside
topic gets a client whose failures and lifetime are the publish node's, and a message to it carries
only the headers the node gives it (and ``millrace-idempotency-key``). It is made as every producer
of the platform is (``kafka_producer``): idempotent, waiting for all in-sync replicas. It starts
at the first publish (a runner without publish nodes never opens it)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from millrace_common.platform.producer import kafka_producer
from millrace_common.platform.settings import ServiceSettings
from millrace_common.platform.tables import topic_grants
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_node_runner.adapters.tenants import reading


@dataclass(frozen=True)
class Published:
    topic: str
    partition: int
    offset: int


class TopicPublisher:
    def __init__(self, settings: ServiceSettings, engine: AsyncEngine) -> None:
        self._settings = settings
        self._engine = engine
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def granted(self, tenant_id: str, topic: str) -> bool:
        """Whether the tenant holds the grant to produce to ``topic`` (read at each publish: a revoked
        grant stops the next one)."""
        async with reading(self._engine) as connection:
            found = await connection.execute(
                select(topic_grants.c.topic).where(
                    topic_grants.c.tenant_id == tenant_id,
                    topic_grants.c.topic == topic,
                    topic_grants.c.access == "produce",
                )
            )
            return found.first() is not None

    async def publish(
        self, topic: str, *, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
    ) -> Published:
        producer = await self._started()
        metadata = await producer.send_and_wait(topic, value, key=key, headers=headers)
        return Published(metadata.topic, metadata.partition, metadata.offset)

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                service = self._settings.service_name
                # The client's own murmur2 choice, not the platform's, which remembers each key: a
                # tenant's keys are rendered from templates, unbounded in number and size.
                producer = kafka_producer(
                    self._settings, client_id=f"millrace-{service}-publish", partitioner=DefaultPartitioner()
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
