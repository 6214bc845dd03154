"""The trigger service's Kafka consumer: record events, decoded, a polled batch at a time; acknowledged
when the handler returned, that is when their StartRuns are durable in the outbox. (Webhook calls
start their runs at the gateway, which knows their workflow already.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from millrace_common.contracts.messages.records import RECORD_EVENT
from millrace_common.contracts.topics import RECORDS_EVENTS, ConsumerGroup, Namespace
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery, PoisonGuard, ack_all
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.settings import ServiceSettings

from millrace_trigger.service_layer.records import RecordEventHandler


def consumer(
    settings: ServiceSettings,
    records: RecordEventHandler,
    metrics: ConsumerMetrics,
    dead_letters: DeadLetters,
) -> BatchConsumer:
    group = ConsumerGroup.TRIGGER
    decoder = Decoder(
        Namespace(settings.namespace),
        {RECORDS_EVENTS: RECORD_EVENT},
        dead_letters=dead_letters,
    )

    async def consume(deliveries: Sequence[Delivery[Any]]) -> None:
        with metrics.batch_seconds.labels(topic=RECORDS_EVENTS.name).time():
            await records.handle(deliveries)
        ack_all(deliveries)
        metrics.handled.labels(topic=RECORDS_EVENTS.name, group=group.value, outcome="ok").inc(
            len(deliveries)
        )

    return BatchConsumer(
        settings, group, decoder, consume, guard=PoisonGuard(dead_letters, fault_marker=settings.fault_marker)
    )
