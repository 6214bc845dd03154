"""The trigger service's consumer of the granted outside topics that active Kafka triggers read.

Which topics those are changes as workflows are activated and paused and grants added and revoked:
every ``trigger_kafka_discovery_seconds`` the service reads them, and when the set changed it leaves
the group and joins again subscribed to the new set (its own group, ``trigger-kafka``, so the record
consumer's group never rebalances for it). A message whose value a Kafka trigger cannot take (not
JSON, too large) goes to the ``kafka.granted.dlq`` dead-letter topic with the reason, and the next
message is handled as usual."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from millrace_common.contracts.topics import KAFKA_GRANTED, ConsumerGroup, Namespace, Topic
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery, PoisonGuard, ack_all
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics
from pydantic import TypeAdapter

from millrace_trigger.domain.kafka_messages import Unreadable, consumed, read_value
from millrace_trigger.service_layer.kafka_messages import KafkaMessageHandler
from millrace_trigger.settings import TriggerSettings

log = logging.getLogger(__name__)


class GrantedTopicDecoder(Decoder):
    """Reads the named outside topics (not the namespace's): each record's value as JSON."""

    def __init__(self, topics: Sequence[str], dead_letters: DeadLetters, *, max_bytes: int) -> None:
        super().__init__(Namespace(), {}, dead_letters=dead_letters)
        self._names = sorted(topics)
        self._max_bytes = max_bytes

    @property
    def topics(self) -> list[str]:
        return list(self._names)

    @property
    def pattern(self) -> str | None:
        return None

    def _entry(self, name: str) -> tuple[Topic, TypeAdapter[Any]]:
        return KAFKA_GRANTED, TypeAdapter(object)

    def decoded(self, record: ConsumerRecord) -> Delivery[Any] | str:
        value = read_value(record.value, max_bytes=self._max_bytes)
        if isinstance(value, Unreadable):
            return value.reason
        message = consumed(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.headers or (),
            record.timestamp,
            value,
        )
        return Delivery(KAFKA_GRANTED, record, message)


class KafkaTriggerTopics:
    """A background loop: the consumer of the topics active Kafka triggers read, renewed when they change."""

    def __init__(
        self,
        settings: TriggerSettings,
        handler: KafkaMessageHandler,
        metrics: ConsumerMetrics,
        dead_letters: DeadLetters,
    ) -> None:
        self._settings = settings
        self._handler = handler
        self._metrics = metrics
        self._dead_letters = dead_letters

    async def run(self) -> None:
        current: frozenset[str] = frozenset()
        consuming: asyncio.Task[None] | None = None
        try:
            while True:
                topics = frozenset(c.topic for c in await self._handler.candidates())
                if topics != current:
                    log.info("kafka trigger topics changed", extra={"ids": {"topics": sorted(topics)[:50]}})
                    if consuming is not None:
                        consuming.cancel()
                        await asyncio.gather(consuming, return_exceptions=True)
                        consuming = None
                    current = topics
                    if topics:
                        consuming = asyncio.create_task(self._consumer(topics).run(), name="kafka-triggers")
                elif consuming is not None and consuming.done():
                    consuming.result()  # its error restarts this loop (the service's background jobs)
                await asyncio.sleep(self._settings.trigger_kafka_discovery_seconds)
        finally:
            if consuming is not None:
                consuming.cancel()
                await asyncio.gather(consuming, return_exceptions=True)

    def _consumer(self, topics: frozenset[str]) -> BatchConsumer:
        settings = self._settings
        group = ConsumerGroup.TRIGGER_KAFKA
        decoder = GrantedTopicDecoder(
            sorted(topics), self._dead_letters, max_bytes=settings.trigger_kafka_max_message_bytes
        )
        handler, metrics = self._handler, self._metrics

        async def consume(deliveries: Sequence[Delivery[Any]]) -> None:
            with metrics.batch_seconds.labels(topic=KAFKA_GRANTED.name).time():
                await handler.handle(deliveries)
            ack_all(deliveries)
            metrics.handled.labels(topic=KAFKA_GRANTED.name, group=group.value, outcome="ok").inc(
                len(deliveries)
            )

        return BatchConsumer(
            settings,
            group,
            decoder,
            consume,
            guard=PoisonGuard(self._dead_letters, fault_marker=settings.fault_marker),
        )
