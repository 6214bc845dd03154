"""Consumes node commands per runner class; publishes each result before the batch's offsets commit."""

from __future__ import annotations

import asyncio

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage

from millrace_common.kafka import DeadLetters, batch_subscriber_options
from millrace_common.logs import bound
from millrace_common.messages.node_commands import NODE_COMMAND, ExecuteNode
from millrace_common.metrics import ConsumerMetrics
from millrace_common.topics import NODES_READY_HTTP, NODES_RESULTS, ConsumerGroup, Namespace, Topic

from millrace_node_runner.executor import NodeExecutor
from millrace_node_runner.settings import NodeRunnerSettings


def register(
    broker: KafkaBroker,
    settings: NodeRunnerSettings,
    executor: NodeExecutor,
    dead_letters: DeadLetters,
    metrics: ConsumerMetrics,
) -> None:
    namespace = Namespace(settings.namespace)
    limit = asyncio.Semaphore(settings.concurrency)
    results_topic = namespace.topic(NODES_RESULTS)

    async def run_one(command: ExecuteNode) -> None:
        async with limit:
            with bound(run_id=command.run_id, node_id=command.node_id, tenant_id=command.tenant_id):
                result = await executor.execute(command)
                await broker.publish(result.to_bytes(), topic=results_topic, key=str(command.run_id).encode())

    def subscribe(topic: Topic) -> None:
        @broker.subscriber(namespace.topic(topic), **batch_subscriber_options(settings, ConsumerGroup.NODE_RUNNER))
        async def on_commands(message: KafkaMessage) -> None:
            with metrics.batch_seconds.labels(topic=topic.name).time():
                decoded = await dead_letters.decode(topic, message.raw_message, NODE_COMMAND)
                await asyncio.gather(*(run_one(command) for _, command in decoded))
            metrics.handled.labels(topic=topic.name, group=ConsumerGroup.NODE_RUNNER.value, outcome="ok").inc(
                len(message.raw_message)
            )

    subscribe(NODES_READY_HTTP)
