"""Sending a dead letter's original message back to its original topic: the bytes, the key and the
headers it had, exactly, through a plain aiokafka producer of its own (idempotent, ``acks=all``, the
house's key partitioner)."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from millrace_common.contracts.topics import ALL_TOPICS, Namespace
from millrace_common.platform.producer import kafka_producer
from millrace_common.platform.settings import ServiceSettings
from sqlalchemy import Row


class ReplayPublisher:
    """Started at its first replay, stopped by :meth:`close`."""

    def __init__(self, settings: ServiceSettings) -> None:
        self._settings = settings
        self._namespace = Namespace(settings.namespace)
        self._topics = {topic.name: topic for topic in ALL_TOPICS}
        self._producer: AIOKafkaProducer | None = None
        self._starting = asyncio.Lock()

    async def send(self, letter: Row) -> None:
        """Publish the letter's original message and wait until Kafka has it."""
        producer = await self._started()
        await producer.send_and_wait(
            self._namespace.topic(self._topics[letter.topic]),
            bytes(letter.value),
            key=letter.key.encode() if letter.key is not None else None,
            headers=[(name, value.encode()) for name, value in letter.headers.items()],
        )

    async def _started(self) -> AIOKafkaProducer:
        async with self._starting:
            if self._producer is None:
                producer = kafka_producer(
                    self._settings,
                    client_id=f"millrace-{self._settings.service_name}-replays",
                    linger_ms=0,
                    request_timeout_ms=30_000,
                )
                await producer.start()
                self._producer = producer
            return self._producer

    async def close(self) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None
