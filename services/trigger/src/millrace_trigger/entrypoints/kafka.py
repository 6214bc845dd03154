"""The trigger service's Kafka subscriber: record events and inbound webhooks, a polled batch at a
time, through one consumer (so starting an instance costs one group rebalance, not one per topic);
offsets commit after the handlers returned, when their StartRuns are durable in the outbox."""

from __future__ import annotations

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.message import StreamMessage
from millrace_common.kafka import DeadLetters, PoisonGuard, batch_subscriber_options
from millrace_common.metrics import ConsumerMetrics
from millrace_common.settings import ServiceSettings
from millrace_common.topics import RECORDS_EVENTS, WEBHOOKS_INBOUND, ConsumerGroup, Namespace

from millrace_trigger.service_layer.records import RecordEventHandler
from millrace_trigger.service_layer.webhooks import WebhookHandler


def register(
    broker: KafkaBroker,
    settings: ServiceSettings,
    records: RecordEventHandler,
    webhooks: WebhookHandler,
    metrics: ConsumerMetrics,
    dead_letters: DeadLetters,
) -> None:
    namespace = Namespace(settings.namespace)
    guard = PoisonGuard(dead_letters, fault_marker=settings.fault_marker)
    group = ConsumerGroup.TRIGGER.value
    handlers = {
        namespace.topic(RECORDS_EVENTS): (RECORDS_EVENTS, records.handle),
        namespace.topic(WEBHOOKS_INBOUND): (WEBHOOKS_INBOUND, webhooks.handle),
    }

    @broker.subscriber(
        *handlers, decoder=_undecoded, **batch_subscriber_options(settings, ConsumerGroup.TRIGGER)
    )
    async def on_batch(message: KafkaMessage) -> None:
        for name, (topic, handle) in handlers.items():
            polled = [record for record in message.raw_message if record.topic == name]
            if not polled:
                continue
            with metrics.batch_seconds.labels(topic=topic.name).time():
                await guard.handle(handle, polled)
            metrics.handled.labels(topic=topic.name, group=group, outcome="ok").inc(len(polled))


async def _undecoded(message: StreamMessage[tuple[ConsumerRecord, ...]]) -> None:
    """The handlers validate the raw records themselves (dead-lettering what does not validate), so
    the framework's JSON decoding of every message would be wasted work."""
