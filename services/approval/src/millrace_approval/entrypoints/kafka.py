"""Follows ``runs.events``: approval requests open approvals; decisions, cancellations, timeouts and
finished runs close them."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from millrace_common.kafka import DeadLetters, PoisonGuard, batch_subscriber_options
from millrace_common.messages.run_events import RUN_EVENT
from millrace_common.metrics import ConsumerMetrics
from millrace_common.settings import ServiceSettings
from millrace_common.topics import RUNS_EVENTS, ConsumerGroup, Namespace

from millrace_approval.service_layer.approvals import Approvals

CONCERNS = frozenset(
    {
        "approval.requested",
        "approval.decided",
        "run.cancelled",
        "run.timed_out",
        "run.failed",
        "run.completed",
    }
)


def register(
    broker: KafkaBroker,
    settings: ServiceSettings,
    dead_letters: DeadLetters,
    metrics: ConsumerMetrics,
    approvals: Approvals,
) -> None:
    namespace = Namespace(settings.namespace)
    guard = PoisonGuard(dead_letters, fault_marker=settings.fault_marker)

    @broker.subscriber(
        namespace.topic(RUNS_EVENTS), **batch_subscriber_options(settings, ConsumerGroup.APPROVAL)
    )
    async def on_run_events(message: KafkaMessage) -> None:
        await guard.handle(handle, message.raw_message)

    async def handle(records: Sequence[ConsumerRecord]) -> None:
        decoded = await dead_letters.decode(RUNS_EVENTS, records, RUN_EVENT)
        with metrics.batch_seconds.labels(topic=RUNS_EVENTS.name).time():
            for _, event in decoded:
                if event.type in CONCERNS:
                    await approvals.on_run_event(event)
                metrics.handled.labels(
                    topic=RUNS_EVENTS.name, group=ConsumerGroup.APPROVAL.value, outcome=event.type
                ).inc()
