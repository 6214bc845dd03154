"""The trigger service's Kafka consumer: record events, decoded, a polled batch at a time; acknowledged
when the handler returned, that is when their StartRuns are durable in the outbox. (Webhook calls
start their runs at the gateway, which knows their workflow already.)"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from millrace_common.contracts.messages.records import RECORD_EVENT
from millrace_common.contracts.topics import RECORDS_EVENTS, RECORDS_INGRESS, ConsumerGroup, Namespace
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery, PoisonGuard, ack_all
from millrace_common.platform.gathering import Gathering
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics

from millrace_trigger.domain.provenance import refusal
from millrace_trigger.service_layer.records import RecordEventHandler
from millrace_trigger.settings import GATHER_BELOW_RECORDS, TriggerSettings


def consumer(
    settings: TriggerSettings,
    records: RecordEventHandler,
    metrics: ConsumerMetrics,
    dead_letters: DeadLetters,
) -> BatchConsumer:
    group = ConsumerGroup.TRIGGER
    decoder = Decoder(
        Namespace(settings.namespace),
        {RECORDS_EVENTS: RECORD_EVENT, RECORDS_INGRESS: RECORD_EVENT},
        dead_letters=dead_letters,
    )
    namespace = Namespace(settings.namespace)

    async def consume(deliveries: Sequence[Delivery[Any]]) -> None:
        accepted: list[Delivery[Any]] = []
        for delivery in deliveries:
            proven = (
                namespace.tenant_of(RECORDS_INGRESS, delivery.record.topic)
                if delivery.topic is RECORDS_INGRESS
                else None
            )
            reason = refusal(proven, delivery.message.tenant_id)
            if reason is None:
                accepted.append(delivery)
            else:
                await dead_letters.send(delivery.topic, delivery.record, reason)
                delivery.ack()
        with metrics.batch_seconds.labels(topic=RECORDS_EVENTS.name).time():
            await records.handle(accepted)
        ack_all(accepted)
        metrics.handled.labels(topic=RECORDS_EVENTS.name, group=group.value, outcome="ok").inc(len(accepted))

    return BatchConsumer(
        settings,
        group,
        decoder,
        consume,
        guard=PoisonGuard(dead_letters, fault_marker=settings.fault_marker),
        discovery_seconds=settings.trigger_ingress_discovery_seconds,
        gathering=Gathering(settings.trigger_record_gather_ms / 1000, GATHER_BELOW_RECORDS),
    )
