"""Consumes record events and asks for the runs they start; offsets commit after StartRun is durable."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from millrace_common.kafka import DeadLetters, batch_subscriber_options
from millrace_common.messages.records import RECORD_EVENT
from millrace_common.metrics import ConsumerMetrics
from millrace_common.settings import ServiceSettings
from millrace_common.topics import RECORDS_EVENTS, RUNS_COMMANDS, ConsumerGroup, Namespace

from millrace_trigger.adapters.trigger_index import TriggerIndex
from millrace_trigger.domain.matching import start_runs, trigger_kind


def register(
    broker: KafkaBroker,
    settings: ServiceSettings,
    index: TriggerIndex,
    dead_letters: DeadLetters,
    metrics: ConsumerMetrics,
) -> None:
    namespace = Namespace(settings.namespace)
    commands_topic = namespace.topic(RUNS_COMMANDS)

    @broker.subscriber(
        namespace.topic(RECORDS_EVENTS), **batch_subscriber_options(settings, ConsumerGroup.TRIGGER)
    )
    async def on_record_events(message: KafkaMessage) -> None:
        with metrics.batch_seconds.labels(topic=RECORDS_EVENTS.name).time():
            pending = []
            for _, event in await dead_letters.decode(RECORDS_EVENTS, message.raw_message, RECORD_EVENT):
                candidates = await index.candidates(event.tenant_id, trigger_kind(event), event.pipeline_id)
                for command in start_runs(event, candidates):
                    pending.append(
                        await broker.publish(
                            command.to_bytes(), topic=commands_topic, key=str(command.run_id).encode(), no_confirm=True
                        )
                    )
            await asyncio.gather(*pending)
        metrics.handled.labels(topic=RECORDS_EVENTS.name, group=ConsumerGroup.TRIGGER.value, outcome="ok").inc(
            len(message.raw_message)
        )
