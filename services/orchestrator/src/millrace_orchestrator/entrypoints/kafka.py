"""The Kafka consumer: run commands and node results, polled together, decoded, handled as one batch
(``service_layer.runs``) and acknowledged once the batch is handled."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from millrace_common.contracts.messages.node_commands import NODE_RESULT
from millrace_common.contracts.messages.run_commands import RUN_COMMAND
from millrace_common.contracts.topics import NODES_RESULTS, RUNS_COMMANDS, ConsumerGroup, Namespace
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery, PoisonGuard, ack_all
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.settings import ServiceSettings

from millrace_orchestrator.domain.decide import Message
from millrace_orchestrator.service_layer.runs import RunMessages


def consumer(
    settings: ServiceSettings, runs: RunMessages, dead_letters: DeadLetters, metrics: ConsumerMetrics
) -> BatchConsumer:
    group = ConsumerGroup.ORCHESTRATOR
    decoder = Decoder(
        Namespace(settings.namespace),
        {RUNS_COMMANDS: RUN_COMMAND, NODES_RESULTS: NODE_RESULT},
        dead_letters=dead_letters,
    )

    async def consume(deliveries: Sequence[Delivery[Any]]) -> None:
        if not deliveries:
            return
        label = "+".join(sorted({d.topic.name for d in deliveries}))
        with metrics.batch_seconds.labels(topic=label).time():
            source = {d.message.message_id: d for d in deliveries}

            async def reject(message: Message, reason: str) -> None:
                delivery = source[message.message_id]
                await dead_letters.send(delivery.topic, delivery.record, reason)

            await runs.handle([d.message for d in deliveries], reject)
        ack_all(deliveries)
        for name in {d.topic.name for d in deliveries}:
            handled = sum(1 for d in deliveries if d.topic.name == name)
            metrics.handled.labels(topic=name, group=group.value, outcome="ok").inc(handled)

    return BatchConsumer(
        settings,
        group,
        decoder,
        consume,
        guard=PoisonGuard(dead_letters, fault_marker=settings.fault_marker),
    )
