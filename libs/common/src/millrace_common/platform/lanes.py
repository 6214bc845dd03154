"""A consumer-group member whose topics are lanes: each topic has its own number of slots, its
messages run one by one, several at a time, and each is acknowledged when it finishes, in any order.

A lane whose slots and buffer are full has its partitions paused while the others keep flowing, so
slow work on one topic (AI calls) never holds up another's (HTTP or record work). Messages start in
offset order and finish in any order; an offset is committed only once it and every offset before it
on its partition were acknowledged (``millrace_common.platform.offsets``). The handler gets a batch of one
decoded message (``millrace_common.platform.consuming``'s contract); a record that does not decode is
dead-lettered and acknowledged.

FastStream's subscribers either handle a polled batch as a whole (one slow call holds up every
message behind it) or one message per partition at a time, hence this loop on aiokafka directly.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError

from millrace_common.contracts.messages.envelope import DeadLetterCause
from millrace_common.contracts.topics import ConsumerGroup, Namespace, Topic
from millrace_common.platform import fetch_wait, fetcher_mend
from millrace_common.platform.consumer_watch import Membership
from millrace_common.platform.consuming import Decoder, Handler
from millrace_common.platform.fetch_wait import FETCHER_TIMEOUT_MS, Quiet
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.offsets import PartitionProgress
from millrace_common.platform.outages import OncePerInterval, unreachable_dependency
from millrace_common.platform.settings import ServiceSettings

log = logging.getLogger(__name__)

IDLE_POLL_MS = 50
BUSY_POLL_MS = 5
QUIET_POLL_MS = 1000
"""A poll's wait once nothing has arrived for a while and nothing runs (records end the wait at once)."""
COMMIT_INTERVAL_SECONDS = 0.1
SEND_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
SEND_REFUSALS = 3
"""How many times Kafka may refuse a message (not be away: refuse it) before it is given up."""


class Undeliverable(Exception):
    """Kafka keeps refusing a message for what it is: it will never be sent as it is."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error


async def until_sent(send: Callable[[], Awaitable[None]], outages: OncePerInterval) -> None:
    """A message is never dropped: while Kafka is away, sending waits (and the message's offset stays
    uncommitted), saying so once per 30 s. A message Kafka refuses for what it is (too large, say) is
    not retried forever: after a few refusals :class:`Undeliverable`."""
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
            if outages.due(missing or type(error).__name__):
                log.warning(
                    "sending to Kafka failed; trying again (said once per 30 s)",
                    extra={"ids": {"error": type(error).__name__, "reason": str(error)[:300]}},
                )
            await asyncio.sleep(pause)


@dataclass
class Lane:
    """One topic: its slots and the messages fetched but not started yet."""

    topic: Topic
    slots: int
    running: int = 0
    waiting: deque[tuple[TopicPartition, ConsumerRecord]] = field(default_factory=deque)

    @property
    def full(self) -> bool:
        return self.running >= self.slots and len(self.waiting) >= self.slots


@dataclass(frozen=True)
class Draining:
    """How long running messages get to finish when partitions are taken away or the consumer stops,
    and how long the group waits for a silent member."""

    session_timeout_ms: int = 10_000
    on_revoke_seconds: float = 5.0
    on_stop_seconds: float = 20.0


class LaneConsumer:
    def __init__(
        self,
        settings: ServiceSettings,
        group: ConsumerGroup,
        decoder: Decoder,
        lanes: Mapping[Topic, int],
        handle: Handler,
        metrics: ConsumerMetrics,
        *,
        draining: Draining = Draining(),
    ) -> None:
        self._settings = settings
        self._group = group
        self._namespace = Namespace(settings.namespace)
        self._decoder = decoder
        self._lanes = {self._namespace.topic(topic): Lane(topic, slots) for topic, slots in lanes.items()}
        self._handle = handle
        self._metrics = metrics
        self._draining = draining
        self._quiet = Quiet()
        self._progress: dict[TopicPartition, PartitionProgress] = {}
        self._tasks: dict[TopicPartition, set[asyncio.Task[None]]] = {}
        self._committed_at = 0.0
        self._outages = OncePerInterval()
        group_name = self._namespace.group(group)
        self.membership = Membership(f"group {group_name}", list(self._lanes), group_name)
        """What Kafka assigned this member, for readiness (``millrace_common.platform.consumer_watch``)."""

    async def run(self) -> None:
        """Consume until cancelled; then finish what runs (within the drain time) and commit."""
        self._quiet = Quiet()
        session_ms = self._draining.session_timeout_ms
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            **client_options(self._settings),
            group_id=self._namespace.group(self._group),
            client_id=f"millrace-{self._settings.service_name}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self._settings.kafka_fetch_max_wait_ms,
            consumer_timeout_ms=FETCHER_TIMEOUT_MS,
            max_poll_records=self._settings.kafka_max_poll_records,
            session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(session_ms // 3, 1000),
        )
        consumer.subscribe(
            list(self._lanes), listener=_Rebalance(self, consumer, self._draining.on_revoke_seconds)
        )
        await consumer.start()
        fetcher_mend.mend(consumer)
        fetch_wait.install(
            consumer,
            partial_ms=self._settings.kafka_fetch_max_wait_ms,
            full_ms=self._settings.kafka_full_fetch_max_wait_ms,
        )
        try:
            while True:
                await self._poll(consumer)
        finally:
            self.membership.left()
            await self._stop(consumer)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        paused = self._pause_full_lanes(consumer)
        quiet = self._quiet.idle and not self._running()
        fetched = await consumer.getmany(
            timeout_ms=BUSY_POLL_MS if paused else QUIET_POLL_MS if quiet else IDLE_POLL_MS,
            max_records=self._settings.kafka_max_poll_records,
        )
        self._quiet.observe(bool(fetched), time.monotonic())
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

    def _running(self) -> bool:
        return any(lane.running or lane.waiting for lane in self._lanes.values())

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
            task = asyncio.create_task(self._run_one(lane, progress, record), name=f"lane-{record.offset}")
            running = self._tasks.setdefault(partition, set())
            running.add(task)
            task.add_done_callback(running.discard)

    async def _run_one(self, lane: Lane, progress: PartitionProgress, record: ConsumerRecord) -> None:
        offset = record.offset
        try:
            decoded = self._decoder.decoded(record)
            if isinstance(decoded, str):
                await self._refuse(lane, record, decoded)
                progress.finished(offset)
                return
            decoded.on_ack = lambda: progress.finished(offset)
            for attempt in itertools.count():
                try:
                    await self._handle([decoded])
                    break
                except Exception as error:
                    missing = unreachable_dependency(error)
                    if missing is not None:
                        # An outage is waited out: the message is handled again, never dead-lettered.
                        if self._outages.due(missing):
                            log.warning(
                                "a message waits for a dependency (said once per 30 s)",
                                extra={"ids": {"dependency": missing, "offset": offset}},
                            )
                        await asyncio.sleep(SEND_BACKOFF_SECONDS[min(attempt, len(SEND_BACKOFF_SECONDS) - 1)])
                        continue
                    # The handler is to deal with its own failures; one that escapes is
                    # dead-lettered, so the partition's committed offset moves on past it.
                    log.exception("a message could not be handled", extra={"ids": {"offset": offset}})
                    reason = f"handling failed: {type(error).__name__}: {error}"
                    await self._refuse(lane, record, reason, DeadLetterCause.FAILED)
                    decoded.ack()
                    break
            if not decoded.acked:
                log.error(
                    "a handler returned without acknowledging; moving past", extra={"ids": {"offset": offset}}
                )
                decoded.ack()
        finally:
            lane.running -= 1
            self._start_waiting(lane)

    async def _refuse(
        self,
        lane: Lane,
        record: ConsumerRecord,
        reason: str,
        cause: DeadLetterCause = DeadLetterCause.UNDECODABLE,
    ) -> None:
        try:
            await until_sent(lambda: self._decoder.refuse(record, reason, cause), self._outages)
        except Undeliverable:
            log.error(
                "a message could be neither handled nor dead-lettered; moving past it",
                extra={
                    "ids": {"topic": record.topic, "partition": record.partition, "offset": record.offset}
                },
            )
        self._metrics.handled.labels(
            topic=lane.topic.name, group=self._group.value, outcome="dead_lettered"
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
        """Hand partitions back: forget their waiting messages, give their running ones a little time,
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
            await self.release(consumer, list(self._progress), self._draining.on_stop_seconds)
        finally:
            leftover = [task for tasks in self._tasks.values() for task in tasks]
            for task in leftover:
                task.cancel()
            await asyncio.gather(*leftover, return_exceptions=True)
            await consumer.stop()


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, owner: LaneConsumer, consumer: AIOKafkaConsumer, wait_seconds: float) -> None:
        self._owner = owner
        self._consumer = consumer
        self._wait_seconds = wait_seconds

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner.membership.on_partitions_revoked(revoked)
        await self._owner.release(self._consumer, list(revoked), self._wait_seconds)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._owner.membership.on_partitions_assigned(assigned)
