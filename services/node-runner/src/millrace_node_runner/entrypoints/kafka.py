"""Node commands in, node results out.

One consumer (group ``node-runner``) reads the four runner topics. Each topic is a lane with its own
number of slots, so slow AI calls never hold up HTTP or record work: a lane whose slots and buffer
are full has its partitions paused while the others keep flowing. Commands start in offset order
and finish in any order; an offset is committed only once the results of it and of every offset
before it on its partition are published (see ``domain/offsets.py``).

FastStream's subscribers either handle a polled batch as a whole (one slow call holds up every
command behind it) or one message per partition at a time, hence this loop on aiokafka directly.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from millrace_common.kafka import DeadLetters, describe_validation_error, inject_fault
from millrace_common.logs import bound
from millrace_common.messages.node_commands import (
    NODE_COMMAND,
    ExecuteNode,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.metrics import ConsumerMetrics
from millrace_common.node_errors import NodeErrorType
from millrace_common.outages import OncePerInterval, unreachable_dependency
from millrace_common.topics import ConsumerGroup, Namespace, Topic
from pydantic import ValidationError

from millrace_node_runner.domain.offsets import PartitionProgress
from millrace_node_runner.domain.outcomes import failed
from millrace_node_runner.metrics import NodeMetrics
from millrace_node_runner.service_layer.executor import NodeResult, failed_instead, result_of
from millrace_node_runner.settings import NodeRunnerSettings

log = logging.getLogger(__name__)

Execute = Callable[[ExecuteNode], Awaitable[NodeResult]]
Publish = Callable[[NodeResult], Awaitable[None]]

IDLE_POLL_MS = 50
COMMIT_INTERVAL_SECONDS = 0.1
BUSY_POLL_MS = 5
SEND_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
SEND_REFUSALS = 3
"""How many times Kafka may refuse a message (not be away: refuse it) before it is given up."""


class Undeliverable(Exception):
    """Kafka keeps refusing a message for what it is: it will never be sent as it is."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


def undelivered_result(result: NodeResult, error: BaseException) -> NodeFailedResult:
    """What the orchestrator is told when a node's own result could not be delivered."""
    message = f"the node's result could not be delivered: Kafka refused it ({type(error).__name__})"
    if isinstance(error, MessageSizeTooLargeError):
        outcome = failed(NodeErrorType.TOO_LARGE, message, retryable=False)
    else:
        outcome = failed(NodeErrorType.RUNNER_ERROR, message, retryable=False)
    return failed_instead(result, outcome)


@dataclass
class Lane:
    """One runner class (one topic): its slots and the commands fetched but not started yet."""

    topic: Topic
    slots: int
    running: int = 0
    waiting: deque[tuple[TopicPartition, ConsumerRecord]] = field(default_factory=deque)

    @property
    def full(self) -> bool:
        return self.running >= self.slots and len(self.waiting) >= self.slots


class CommandConsumer:
    def __init__(
        self,
        settings: NodeRunnerSettings,
        lanes: Sequence[tuple[Topic, int]],
        execute: Execute,
        publish: Publish,
        dead_letters: DeadLetters,
        consumer_metrics: ConsumerMetrics,
        node_metrics: NodeMetrics,
    ) -> None:
        self._settings = settings
        self._namespace = Namespace(settings.namespace)
        self._lanes = {self._namespace.topic(topic): Lane(topic, slots) for topic, slots in lanes}
        self._execute = execute
        self._publish = publish
        self._dead_letters = dead_letters
        self._consumer_metrics = consumer_metrics
        self._node_metrics = node_metrics
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        self._tasks: dict[TopicPartition, set[asyncio.Task[None]]] = {}
        self._committed_at = 0.0
        self._outages = OncePerInterval()
        self._fault_marker = settings.fault_marker.encode() if settings.fault_marker else None

    async def run(self) -> None:
        """Consume until cancelled; then finish what runs (within the drain time) and commit."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            group_id=self._namespace.group(ConsumerGroup.NODE_RUNNER),
            client_id=f"millrace-{self._settings.service_name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms,
            max_poll_records=self._settings.kafka_max_poll_records,
            session_timeout_ms=self._settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=max(self._settings.kafka_session_timeout_ms // 3, 1000),
        )
        consumer.subscribe(
            list(self._lanes), listener=_Rebalance(self, consumer, self._settings.revoke_drain_seconds)
        )
        await consumer.start()
        try:
            while True:
                await self._poll(consumer)
        finally:
            await self._stop(consumer)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        paused = self._pause_full_lanes(consumer)
        fetched = await consumer.getmany(
            timeout_ms=BUSY_POLL_MS if paused else IDLE_POLL_MS,
            max_records=self._settings.kafka_max_poll_records,
        )
        for partition, records in fetched.items():
            lane = self._lanes[partition.topic]
            lane.waiting.extend((partition, record) for record in records)
            self._start_waiting(lane)
        now = time.monotonic()
        if now - self._committed_at >= COMMIT_INTERVAL_SECONDS:
            # Commits are batched in time: each is a round trip to the group coordinator, and a
            # later commit covers an earlier one. What finished is committed within the interval.
            self._committed_at = now
            await self._commit(consumer, list(self._progress))

    def _pause_full_lanes(self, consumer: AIOKafkaConsumer) -> bool:
        full = {name for name, lane in self._lanes.items() if lane.full}
        assigned = consumer.assignment()
        consumer.pause(*(tp for tp in assigned if tp.topic in full))
        consumer.resume(*(tp for tp in assigned if tp.topic not in full))
        return bool(full)

    def _start_waiting(self, lane: Lane) -> None:
        while lane.waiting and lane.running < lane.slots:
            partition, record = lane.waiting.popleft()
            progress = self._progress.setdefault(partition, PartitionProgress())
            progress.started(record.offset)
            lane.running += 1
            task = asyncio.create_task(
                self._handle(lane, partition, progress, record), name=f"node-{record.offset}"
            )
            running = self._tasks.setdefault(partition, set())
            running.add(task)
            task.add_done_callback(running.discard)

    async def _handle(
        self, lane: Lane, partition: TopicPartition, progress: PartitionProgress, record: ConsumerRecord
    ) -> None:
        try:
            await self._until_handled(lane, record)
        except Exception as error:
            # Not node failures (they are results), nor Kafka being away (sending waits): a command
            # that breaks the runner itself. It is dead-lettered with the reason, so the partition's
            # committed offset moves on and a restart does not run the commands behind it again.
            log.exception("a node command could not be handled", extra={"ids": {"offset": record.offset}})
            reason = f"the runner could not handle the command: {type(error).__name__}: {error}"
            failure = error
            try:
                await self._until_sent(
                    lambda: self._dead_letters.send(lane.topic, record, reason, error=failure)
                )
            except Undeliverable:
                log.error(
                    "a node command could be neither handled nor dead-lettered; moving past it",
                    extra={
                        "ids": {"topic": record.topic, "partition": record.partition, "offset": record.offset}
                    },
                )
            await self._report_unhandled(record, reason)
            self._count(lane, "dead_lettered")
        finally:
            lane.running -= 1
            self._start_waiting(lane)
        # Only now, with the result (or the dead letter) sent, may the commit pass this offset.
        progress.finished(record.offset)

    async def _report_unhandled(self, record: ConsumerRecord, reason: str) -> None:
        """Tell the orchestrator the node failed, so the run does not wait for a result that will
        never come (nothing else ends a waiting node but the run's own timeout)."""
        try:
            command = NODE_COMMAND.validate_json(record.value or b"")
        except ValidationError:
            return  # no run to tell: the dead letter is all there is
        outcome = failed(NodeErrorType.RUNNER_ERROR, reason[:1000], retryable=False)
        result = result_of(command, outcome, duration_ms=0.0)
        try:
            await self._until_sent(lambda: self._publish(result))
        except Undeliverable:
            log.exception("the failure of an unhandled node command could not be sent")

    async def _until_handled(self, lane: Lane, record: ConsumerRecord) -> None:
        """Handle the command; while PostgreSQL or Kafka is away, wait and handle it again (the same
        attempt under the same idempotency key: its side effects, if any, were not recorded)."""
        for attempt in itertools.count():
            try:
                await self._handle_record(lane, record)
                return
            except Exception as error:
                missing = unreachable_dependency(error)
                if missing is None:
                    raise
                if self._outages.due(missing):
                    log.warning(
                        "a node command waits for a dependency (said once per 30 s)",
                        extra={"ids": {"dependency": missing, "offset": record.offset}},
                    )
                await asyncio.sleep(SEND_BACKOFF_SECONDS[min(attempt, len(SEND_BACKOFF_SECONDS) - 1)])

    async def _handle_record(self, lane: Lane, record: ConsumerRecord) -> None:
        try:
            command = NODE_COMMAND.validate_json(record.value or b"")
        except ValidationError as error:
            reason = describe_validation_error(error)
            await self._until_sent(lambda: self._dead_letters.send(lane.topic, record, reason))
            self._count(lane, "dead_lettered")
            return
        inject_fault(self._fault_marker, [record])
        with bound(run_id=command.run_id, node_id=command.node_id, tenant_id=command.tenant_id):
            result = await self._execute(command)
            outcome = "succeeded" if isinstance(result, NodeSucceededResult) else "failed"
            self._node_metrics.node_seconds.labels(node_type=command.node_type, outcome=outcome).observe(
                result.duration_ms / 1000
            )
            details = {"node_type": command.node_type, "attempt": command.attempt, "outcome": outcome}
            log.info("node ran", extra={"ids": {**details, "duration_ms": round(result.duration_ms, 1)}})
            try:
                await self._until_sent(lambda: self._publish(result))
            except Undeliverable as refused:
                # Kafka refused the result itself (not an outage): report that as the node's failure,
                # a small message that is delivered, instead of leaving the node to time out.
                outcome = "failed"
                undeliverable = undelivered_result(result, refused.error)
                await self._until_sent(lambda: self._publish(undeliverable))
        self._count(lane, outcome)

    async def _until_sent(self, send: Callable[[], Awaitable[None]]) -> None:
        """A result or dead letter is never dropped: while Kafka is away, sending waits (and the
        command's offset stays uncommitted), saying so once per 30 s. A message Kafka refuses for what
        it is (too large, say) is not retried forever: after a few refusals :class:`Undeliverable`."""
        refusals = 0
        for attempt in itertools.count():
            try:
                await send()
                return
            except Exception as error:
                missing = unreachable_dependency(error)
                if missing is None:
                    refusals += 1
                    if refusals >= SEND_REFUSALS:
                        raise Undeliverable(error) from error
                pause = SEND_BACKOFF_SECONDS[min(attempt, len(SEND_BACKOFF_SECONDS) - 1)]
                if self._outages.due(missing or type(error).__name__):
                    log.warning(
                        "sending to Kafka failed; trying again (said once per 30 s)",
                        extra={"ids": {"error": type(error).__name__, "reason": str(error)[:300]}},
                    )
                await asyncio.sleep(pause)

    def _count(self, lane: Lane, outcome: str) -> None:
        self._consumer_metrics.handled.labels(
            topic=lane.topic.name, group=ConsumerGroup.NODE_RUNNER.value, outcome=outcome
        ).inc()

    async def _commit(self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition]) -> None:
        positions = {
            tp: position
            for tp in partitions
            if (progress := self._progress.get(tp)) is not None
            and (position := progress.to_commit()) is not None
        }
        if not positions:
            return
        try:
            await consumer.commit(positions)
        except KafkaError as error:
            # A rebalance is under way, or the coordinator moved: the positions are committed next time.
            log.warning("committing offsets failed", extra={"ids": {"error": type(error).__name__}})
            return
        for tp, position in positions.items():
            self._progress[tp].committed(position)

    async def release(
        self, consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition], wait_seconds: float
    ) -> None:
        """Hand partitions back: forget their waiting commands, give their running ones a little time,
        commit what finished. Whatever did not finish is redelivered to the next owner."""
        revoked = set(partitions)
        for lane in self._lanes.values():
            lane.waiting = deque(item for item in lane.waiting if item[0] not in revoked)
        running = [task for tp in revoked for task in self._tasks.get(tp, ())]
        if running:
            await asyncio.wait(running, timeout=wait_seconds)
        await self._commit(consumer, [tp for tp in revoked if tp in self._progress])
        for tp in revoked:
            self._progress.pop(tp, None)
            self._tasks.pop(tp, None)

    async def _stop(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await self.release(consumer, list(self._progress), self._settings.drain_seconds)
        finally:
            leftover = [task for tasks in self._tasks.values() for task in tasks]
            for task in leftover:
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)
            await consumer.stop()


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: CommandConsumer, consumer: AIOKafkaConsumer, wait_seconds: float) -> None:
        self._owner = owner
        self._consumer = consumer
        self._wait_seconds = wait_seconds

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner.release(self._consumer, list(revoked), self._wait_seconds)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None
