"""Node commands in, node results out.

One consumer (group ``node-runner``, ``millrace_common.platform.lanes.LaneConsumer``) reads the four runner
topics, each a lane with its own number of slots, so slow AI calls never hold up HTTP or record work.
:class:`NodeCommands` handles one decoded command: it runs the node, publishes the result and
acknowledges the command, so its offset may be committed. A command the runner cannot handle is
dead-lettered and reported to the orchestrator as the node's failure, so the run does not wait.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from millrace_common.contracts.messages.node_commands import (
    NODE_COMMAND,
    ExecuteNode,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.contracts.topics import ConsumerGroup, Namespace, Topic
from millrace_common.platform.consuming import Decoder, Delivery
from millrace_common.platform.kafka import DeadLetters, inject_fault
from millrace_common.platform.lanes import (
    SEND_BACKOFF_SECONDS,
    Draining,
    LaneConsumer,
    Undeliverable,
    until_sent,
)
from millrace_common.platform.logs import bound
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.outages import OncePerInterval, unreachable_dependency

from millrace_node_runner.domain.outcomes import failed
from millrace_node_runner.metrics import NodeMetrics
from millrace_node_runner.service_layer.executor import NodeResult, failed_instead, result_of
from millrace_node_runner.settings import NodeRunnerSettings

log = logging.getLogger(__name__)

Execute = Callable[[ExecuteNode], Awaitable[NodeResult]]
Publish = Callable[[NodeResult], Awaitable[None]]


def undelivered_result(result: NodeResult, error: BaseException) -> NodeFailedResult:
    """What the orchestrator is told when a node's own result could not be delivered."""
    message = f"the node's result could not be delivered: Kafka refused it ({type(error).__name__})"
    if isinstance(error, MessageSizeTooLargeError):
        outcome = failed(NodeErrorType.TOO_LARGE, message, retryable=False)
    else:
        outcome = failed(NodeErrorType.RUNNER_ERROR, message, retryable=False)
    return failed_instead(result, outcome)


def consumer(
    settings: NodeRunnerSettings,
    lanes: Sequence[tuple[Topic, int]],
    commands: NodeCommands,
    dead_letters: DeadLetters,
    consumer_metrics: ConsumerMetrics,
) -> LaneConsumer:
    decoder = Decoder(
        Namespace(settings.namespace),
        dict.fromkeys((t for t, _ in lanes), NODE_COMMAND),
        dead_letters=dead_letters,
    )
    return LaneConsumer(
        settings,
        ConsumerGroup.NODE_RUNNER,
        decoder,
        dict(lanes),
        commands.handle,
        consumer_metrics,
        draining=Draining(
            session_timeout_ms=settings.kafka_session_timeout_ms,
            on_revoke_seconds=settings.revoke_drain_seconds,
            on_stop_seconds=settings.drain_seconds,
        ),
    )


class NodeCommands:
    """Handles a node command: runs the node, publishes its result, acknowledges the command."""

    def __init__(
        self,
        settings: NodeRunnerSettings,
        execute: Execute,
        publish: Publish,
        dead_letters: DeadLetters,
        consumer_metrics: ConsumerMetrics,
        node_metrics: NodeMetrics,
    ) -> None:
        self._execute = execute
        self._publish = publish
        self._dead_letters = dead_letters
        self._consumer_metrics = consumer_metrics
        self._node_metrics = node_metrics
        self._outages = OncePerInterval()
        self._fault_marker = settings.fault_marker.encode() if settings.fault_marker else None

    async def handle(self, deliveries: Sequence[Delivery[Any]]) -> None:
        for delivery in deliveries:
            await self._handle_one(delivery)

    async def _handle_one(self, delivery: Delivery[ExecuteNode]) -> None:
        try:
            await self._until_handled(delivery)
        except Exception as error:
            # Not node failures (they are results), nor Kafka being away (sending waits): a command
            # that breaks the runner itself. It is dead-lettered with the reason, so the partition's
            # committed offset moves on and a restart does not run the commands behind it again.
            log.exception("a node command could not be handled", extra={"ids": {"offset": delivery.offset}})
            reason = f"the runner could not handle the command: {type(error).__name__}: {error}"
            failure = error
            try:
                await until_sent(
                    lambda: self._dead_letters.send(delivery.topic, delivery.record, reason, error=failure),
                    self._outages,
                )
            except Undeliverable:
                log.error(
                    "a node command could be neither handled nor dead-lettered; moving past it",
                    extra={"ids": {"topic": delivery.record.topic, "offset": delivery.offset}},
                )
            await self._report_unhandled(delivery.message, reason)
            self._count(delivery.topic, "dead_lettered")
        # Only now, with the result (or the dead letter) sent, may the commit pass this offset.
        delivery.ack()

    async def _report_unhandled(self, command: ExecuteNode, reason: str) -> None:
        """Tell the orchestrator the node failed, so the run does not wait for a result that will
        never come (nothing else ends a waiting node but the run's own timeout)."""
        outcome = failed(NodeErrorType.RUNNER_ERROR, reason[:1000], retryable=False)
        result = result_of(command, outcome, duration_ms=0.0)
        try:
            await until_sent(lambda: self._publish(result), self._outages)
        except Undeliverable:
            log.exception("the failure of an unhandled node command could not be sent")

    async def _until_handled(self, delivery: Delivery[ExecuteNode]) -> None:
        """Handle the command; while PostgreSQL or Kafka is away, wait and handle it again (the same
        attempt under the same idempotency key: its side effects, if any, were not recorded)."""
        for attempt in itertools.count():
            try:
                await self._run(delivery)
                return
            except Exception as error:
                missing = unreachable_dependency(error)
                if missing is None:
                    raise
                if self._outages.due(missing):
                    log.warning(
                        "a node command waits for a dependency (said once per 30 s)",
                        extra={"ids": {"dependency": missing, "offset": delivery.offset}},
                    )
                await asyncio.sleep(SEND_BACKOFF_SECONDS[min(attempt, len(SEND_BACKOFF_SECONDS) - 1)])

    async def _run(self, delivery: Delivery[ExecuteNode]) -> None:
        command = delivery.message
        inject_fault(self._fault_marker, [delivery.record])
        with bound(run_id=command.run_id, node_id=command.node_id, tenant_id=command.tenant_id):
            result = await self._execute(command)
            outcome = "succeeded" if isinstance(result, NodeSucceededResult) else "failed"
            self._node_metrics.node_seconds.labels(node_type=command.node_type, outcome=outcome).observe(
                result.duration_ms / 1000
            )
            details = {"node_type": command.node_type, "attempt": command.attempt, "outcome": outcome}
            log.info("node ran", extra={"ids": {**details, "duration_ms": round(result.duration_ms, 1)}})
            try:
                await until_sent(lambda: self._publish(result), self._outages)
            except Undeliverable as refused:
                # Kafka refused the result itself (not an outage): report that as the node's failure,
                # a small message that is delivered, instead of leaving the node to time out.
                outcome = "failed"
                undeliverable = undelivered_result(result, refused.error)
                await until_sent(lambda: self._publish(undeliverable), self._outages)
        self._count(delivery.topic, outcome)

    def _count(self, topic: Topic, outcome: str) -> None:
        self._consumer_metrics.handled.labels(
            topic=topic.name, group=ConsumerGroup.NODE_RUNNER.value, outcome=outcome
        ).inc()
