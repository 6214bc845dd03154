"""The Kafka consumer: run commands and node results, polled together, handled as one batch
(``service_layer.runs``), committed after the batch is handled."""

from __future__ import annotations

from collections.abc import Sequence

from aiokafka import ConsumerRecord
from millrace_common.kafka import BatchConsumer, DeadLetters, PoisonGuard
from millrace_common.messages.node_commands import NODE_RESULT
from millrace_common.messages.run_commands import RUN_COMMAND
from millrace_common.metrics import ConsumerMetrics
from millrace_common.settings import ServiceSettings
from millrace_common.topics import NODES_RESULTS, RUNS_COMMANDS, ConsumerGroup, Namespace, Topic
from pydantic import TypeAdapter

from millrace_orchestrator.domain.decide import Message
from millrace_orchestrator.service_layer.runs import RunMessages

TOPICS: tuple[tuple[Topic, TypeAdapter], ...] = ((RUNS_COMMANDS, RUN_COMMAND), (NODES_RESULTS, NODE_RESULT))


def consumer(
    settings: ServiceSettings, runs: RunMessages, dead_letters: DeadLetters, metrics: ConsumerMetrics
) -> BatchConsumer:
    namespace = Namespace(settings.namespace)
    by_name = {namespace.topic(topic): (topic, adapter) for topic, adapter in TOPICS}
    group = ConsumerGroup.ORCHESTRATOR

    async def consume(records: Sequence[ConsumerRecord]) -> None:
        by_topic: dict[str, list[ConsumerRecord]] = {}
        for record in records:
            by_topic.setdefault(record.topic, []).append(record)
        label = "+".join(sorted(by_name[name][0].name for name in by_topic))
        with metrics.batch_seconds.labels(topic=label).time():
            source: dict[object, tuple[Topic, ConsumerRecord]] = {}
            messages: list[Message] = []
            for name, batch in by_topic.items():
                topic, adapter = by_name[name]
                for record, message in await dead_letters.decode(topic, batch, adapter):
                    source[message.message_id] = (topic, record)
                    messages.append(message)

            async def reject(message: Message, reason: str) -> None:
                topic, record = source[message.message_id]
                await dead_letters.send(topic, record, reason)

            await runs.handle(messages, reject)
        for name, batch in by_topic.items():
            topic = by_name[name][0]
            metrics.handled.labels(topic=topic.name, group=group.value, outcome="ok").inc(len(batch))

    return BatchConsumer(
        settings,
        group,
        [topic for topic, _ in TOPICS],
        consume,
        guard=PoisonGuard(dead_letters, fault_marker=settings.fault_marker),
    )
