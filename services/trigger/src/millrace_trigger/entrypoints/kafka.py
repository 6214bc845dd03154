"""The trigger service's Kafka consumer: record events and inbound webhooks, decoded, a polled batch
at a time, through one consumer (so starting an instance costs one group rebalance, not one per
topic); acknowledged when the handlers returned, that is when their StartRuns are durable in the
outbox."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from millrace_common.contracts.messages.records import RECORD_EVENT
from millrace_common.contracts.messages.webhooks import WEBHOOK_MESSAGE
from millrace_common.contracts.topics import RECORDS_EVENTS, WEBHOOKS_INBOUND, ConsumerGroup, Namespace
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery, PoisonGuard, ack_all
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.settings import ServiceSettings

from millrace_trigger.service_layer.records import RecordEventHandler
from millrace_trigger.service_layer.webhooks import WebhookHandler


def consumer(
    settings: ServiceSettings,
    records: RecordEventHandler,
    webhooks: WebhookHandler,
    metrics: ConsumerMetrics,
    dead_letters: DeadLetters,
) -> BatchConsumer:
    group = ConsumerGroup.TRIGGER
    decoder = Decoder(
        Namespace(settings.namespace),
        {RECORDS_EVENTS: RECORD_EVENT, WEBHOOKS_INBOUND: WEBHOOK_MESSAGE},
        dead_letters=dead_letters,
    )
    handlers = ((RECORDS_EVENTS, records.handle), (WEBHOOKS_INBOUND, webhooks.handle))

    async def consume(deliveries: Sequence[Delivery[Any]]) -> None:
        for topic, handle in handlers:
            polled = [d for d in deliveries if d.topic == topic]
            if not polled:
                continue
            with metrics.batch_seconds.labels(topic=topic.name).time():
                await handle(polled)
            ack_all(polled)
            metrics.handled.labels(topic=topic.name, group=group.value, outcome="ok").inc(len(polled))

    return BatchConsumer(
        settings, group, decoder, consume, guard=PoisonGuard(dead_letters, fault_marker=settings.fault_marker)
    )
