"""Kafka subscribers: run commands and node results, in batches, committed after the batch is handled."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from aiokafka import ConsumerRecord
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from pydantic import TypeAdapter

from millrace_common.kafka import DeadLetters, batch_subscriber_options
from millrace_common.messages.node_commands import NODE_RESULT
from millrace_common.messages.run_commands import RUN_COMMAND
from millrace_common.metrics import ConsumerMetrics
from millrace_common.settings import ServiceSettings
from millrace_common.topics import NODES_RESULTS, RUNS_COMMANDS, ConsumerGroup, Namespace, Topic

from millrace_orchestrator.adapters.run_store import UnknownWorkflowVersion
from millrace_orchestrator.domain.decide import Message
from millrace_orchestrator.handlers import RunMessageHandler, UnknownRun, WriteConflict

log = logging.getLogger(__name__)


def register(
    broker: KafkaBroker,
    settings: ServiceSettings,
    handler: RunMessageHandler,
    dead_letters: DeadLetters,
    metrics: ConsumerMetrics,
) -> None:
    namespace = Namespace(settings.namespace)
    options = batch_subscriber_options(settings, ConsumerGroup.ORCHESTRATOR)

    async def consume(topic: Topic, records: Sequence[ConsumerRecord], adapter: TypeAdapter) -> None:
        with metrics.batch_seconds.labels(topic=topic.name).time():
            decoded = await dead_letters.decode(topic, records, adapter)
            record_of = {message.message_id: record for record, message in decoded}

            async def reject(message: Message, reason: str) -> None:
                await dead_letters.send(topic, record_of[message.message_id], reason)

            try:
                await handler.handle_batch([message for _, message in decoded], reject)
            except WriteConflict:
                # Another writer appended to one of the runs meanwhile: nothing of the batch was
                # written; one transaction per message isolates the conflict (and retries it).
                log.warning("batch conflicted with another writer; handling its messages one by one")
                for record, message in decoded:
                    try:
                        await handler.handle(message)
                    except (UnknownRun, UnknownWorkflowVersion) as error:
                        await dead_letters.send(topic, record, str(error))
        metrics.handled.labels(topic=topic.name, group=ConsumerGroup.ORCHESTRATOR.value, outcome="ok").inc(len(records))

    @broker.subscriber(namespace.topic(RUNS_COMMANDS), **options)
    async def on_run_commands(message: KafkaMessage) -> None:
        await consume(RUNS_COMMANDS, message.raw_message, RUN_COMMAND)

    @broker.subscriber(namespace.topic(NODES_RESULTS), **options)
    async def on_node_results(message: KafkaMessage) -> None:
        await consume(NODES_RESULTS, message.raw_message, NODE_RESULT)
