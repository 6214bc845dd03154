"""Kafka: the broker factory (FastStream on aiokafka), subscriber options tuned for latency, and the
dead-letter path for messages that cannot be accepted."""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import random
import traceback
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from pydantic import TypeAdapter, ValidationError

from millrace_common.limits import MAX_PAYLOAD_BYTES, json_size, too_large
from millrace_common.messages.envelope import DeadLetter
from millrace_common.metrics import ConsumerMetrics
from millrace_common.outages import OncePerInterval, unreachable_dependency
from millrace_common.settings import ServiceSettings
from millrace_common.topics import ConsumerGroup, Namespace, Topic, producer_max_request_bytes

T = TypeVar("T")
log = logging.getLogger(__name__)


@functools.lru_cache(maxsize=65_536)
def _key_hash(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def key_partitioner(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """The client's default choice of partition (Java-compatible murmur2 of the key), remembered per
    key: the pure-Python hash costs tens of microseconds, and a run's messages share its key."""
    if key is None:
        return random.choice(available or all_partitions)
    return all_partitions[_key_hash(key) % len(all_partitions)]


def create_broker(settings: ServiceSettings) -> KafkaBroker:
    """A broker whose producer is idempotent, waits for all replicas, and lingers only a millisecond."""
    return KafkaBroker(
        settings.kafka_bootstrap,
        client_id=f"millrace-{settings.service_name}",
        linger_ms=settings.kafka_linger_ms,
        acks="all",
        enable_idempotence=True,
        partitioner=key_partitioner,
        graceful_timeout=10.0,
        max_request_size=producer_max_request_bytes(settings.kafka_max_message_bytes),
        logger=logging.getLogger(f"millrace.{settings.service_name}.kafka"),
        log_level=logging.DEBUG,
    )


class MessageLimitTooSmall(RuntimeError):
    """A topic accepts smaller messages than ``MILLRACE_KAFKA_MAX_MESSAGE_BYTES``: refuse to start
    rather than produce messages the broker refuses."""


async def check_message_limit(settings: ServiceSettings) -> None:
    """Every existing topic of the namespace accepts messages of ``kafka_max_message_bytes``, or
    :class:`MessageLimitTooSmall` names those that do not and how to fix them."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    from millrace_common.topics import every_topic, topic_max_message_bytes

    namespace = Namespace(settings.namespace)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=30_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        names = [namespace.topic(t) for t in every_topic() if namespace.topic(t) in existing]
        if not names:
            return
        answers = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, n) for n in names])
    finally:
        await admin.close()
    needed = topic_max_message_bytes(settings.kafka_max_message_bytes)
    short = {}
    for answer in answers:
        for resource in answer.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == "max.message.bytes" and int(entry["config_value"]) < needed:
                    short[resource["resource_name"]] = int(entry["config_value"])
    if short:
        listed = ", ".join(f"{name} ({limit})" for name, limit in sorted(short.items()))
        raise MessageLimitTooSmall(
            f"MILLRACE_KAFKA_MAX_MESSAGE_BYTES is {settings.kafka_max_message_bytes}, so every topic needs "
            f"max.message.bytes >= {needed}; these accept less: {listed}. Raise their max.message.bytes "
            "(kafka-configs --alter) or lower the setting."
        )


def batch_subscriber_options(settings: ServiceSettings, group: ConsumerGroup) -> dict[str, Any]:
    """Options for a batch subscriber that commits only after its handler returned.

    On an exception the consumer seeks back, so the batch is handled again: handlers are
    idempotent, and messages that can never be handled go to the dead-letter topic instead.
    """
    return {
        "group_id": Namespace(settings.namespace).group(group),
        "batch": True,
        "max_records": settings.kafka_max_poll_records,
        "batch_timeout_ms": settings.kafka_batch_timeout_ms,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "auto_offset_reset": "earliest",
        "ack_policy": AckPolicy.NACK_ON_ERROR,
    }


def describe_validation_error(error: ValidationError) -> str:
    parts = []
    for item in error.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in item["loc"]) or "(message)"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


class DeadLetters:
    """Writes rejected messages, with the reason and the raw bytes, to ``<topic>.dlq``."""

    def __init__(
        self, broker: KafkaBroker, namespace: Namespace, group: ConsumerGroup, metrics: ConsumerMetrics
    ) -> None:
        self._broker = broker
        self._namespace = namespace
        self._group = group
        self._metrics = metrics

    async def send(
        self,
        topic: Topic,
        record: ConsumerRecord,
        reason: str,
        *,
        error: BaseException | None = None,
        attempts: int = 1,
    ) -> None:
        raw: bytes = record.value or b""
        key = record.key.decode(errors="replace") if isinstance(record.key, bytes) else None
        letter = DeadLetter(
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=key,
            reason=reason[:2000],
            consumer_group=self._namespace.group(self._group),
            raw_value=raw.decode(errors="replace"),
            raw_value_base64=base64.b64encode(raw).decode(),
            headers={k: v.decode(errors="replace") for k, v in (record.headers or ())},
            error_type=type(error).__name__ if error is not None else None,
            trace=short_trace(error) if error is not None else None,
            attempts=attempts,
        )
        await self._broker.publish(
            fitted_letter(letter).model_dump_json().encode(),
            topic=self._namespace.topic(topic.dlq),
            key=record.key if isinstance(record.key, bytes) else None,
            headers={"millrace-reason": reason[:500]},
        )
        self._metrics.dead_lettered.labels(topic=topic.name).inc()
        log.warning(
            "dead-lettered a message",
            extra={
                "ids": {
                    "topic": record.topic,
                    "partition": record.partition,
                    "offset": record.offset,
                    "reason": reason[:300],
                    "attempts": attempts,
                }
            },
        )

    def topic_of(self, record: ConsumerRecord) -> Topic:
        """The registry's topic a polled record came from."""
        from millrace_common.topics import ALL_TOPICS

        for topic in ALL_TOPICS:
            if self._namespace.topic(topic) == record.topic:
                return topic
        raise LookupError(f"{record.topic} is not a registered topic of this namespace")

    async def decode(
        self, topic: Topic, records: Sequence[ConsumerRecord], adapter: TypeAdapter[T]
    ) -> list[tuple[ConsumerRecord, T]]:
        """Parse a polled batch; what does not parse or validate is dead-lettered, the rest returned."""
        accepted: list[tuple[ConsumerRecord, T]] = []
        for record in records:
            try:
                accepted.append((record, adapter.validate_json(record.value or b"")))
            except ValidationError as error:
                await self.send(topic, record, describe_validation_error(error))
        return accepted


BatchHandler = Callable[[Sequence[ConsumerRecord]], Awaitable[None]]


def short_trace(error: BaseException, frames: int = 6) -> str:
    """The error and the last few frames of its traceback: enough to find the fault, short enough
    to read in a dead letter."""
    lines = traceback.format_exception(error, limit=-frames)
    return "".join(lines)[-4000:]


def fitted_letter(letter: DeadLetter) -> DeadLetter:
    """The letter, small enough for its topic: a message near the limit cannot travel twice (as text
    and as base64), so the text goes first, then the base64's tail."""
    if too_large(letter.model_dump(mode="json"), MAX_PAYLOAD_BYTES) is None:
        return letter
    letter = letter.model_copy(update={"raw_value": "", "raw_truncated": True})
    if too_large(letter.model_dump(mode="json"), MAX_PAYLOAD_BYTES) is None:
        return letter
    room = MAX_PAYLOAD_BYTES - json_size(
        letter.model_copy(update={"raw_value_base64": ""}).model_dump(mode="json")
    )
    return letter.model_copy(
        update={"raw_value_base64": letter.raw_value_base64[: max(room - 64, 0) // 4 * 4]}
    )


class InjectedFault(RuntimeError):
    """The failure ``MILLRACE_FAULT_MARKER`` injects (tests only)."""


def inject_fault(marker: bytes | None, records: Sequence[ConsumerRecord]) -> None:
    """Fail as a broken handler would on a record carrying the test marker; nothing when unset."""
    if marker is not None and any(marker in (record.value or b"") for record in records):
        raise InjectedFault("a message carries the fault marker (MILLRACE_FAULT_MARKER)")


HANDLING_ATTEMPTS = 3
"""How many times a message is handled on its own before it is dead-lettered."""


class PoisonGuard:
    """Calls a batch handler so that no message can hold back the others on its partition.

    A batch that fails for any reason but an outage (``millrace_common.outages``) is handled again one
    message at a time; a message that fails ``attempts`` times on its own goes to its dead-letter topic
    with the reason, the error's type and a short trace, the attempts and its coordinates, and the
    partition moves on. Handlers are idempotent, so the batch's other messages may be handled twice.
    An outage is raised to the caller, which waits it out: a message is never dead-lettered because
    PostgreSQL or Kafka was away.
    """

    def __init__(
        self,
        dead_letters: DeadLetters,
        *,
        attempts: int = HANDLING_ATTEMPTS,
        pause_seconds: float = 0.2,
        fault_marker: str | None = None,
    ) -> None:
        self._dead_letters = dead_letters
        self._attempts = attempts
        self._pause_seconds = pause_seconds
        self._fault_marker = fault_marker.encode() if fault_marker else None

    async def handle(self, handle: BatchHandler, records: Sequence[ConsumerRecord]) -> None:
        failure = await self._failure_of(handle, records)
        if failure is None:
            return
        log.warning(
            "a batch failed; handling its messages one at a time",
            extra={"ids": {"records": len(records), "error": type(failure).__name__}},
        )
        for record in records:
            for attempt in range(1, self._attempts + 1):
                failure = await self._failure_of(handle, [record])
                if failure is None:
                    break
                if attempt == self._attempts:
                    reason = f"handling failed {attempt} times: {type(failure).__name__}: {failure}"
                    topic = self._dead_letters.topic_of(record)
                    await self._dead_letters.send(topic, record, reason, error=failure, attempts=attempt)
                else:
                    await asyncio.sleep(self._pause_seconds * attempt)

    async def _failure_of(self, handle: BatchHandler, records: Sequence[ConsumerRecord]) -> Exception | None:
        """Handle ``records``: None when that worked, the error when it failed; an outage is raised."""
        try:
            inject_fault(self._fault_marker, records)
            await handle(records)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if unreachable_dependency(error) is not None:
                raise
            return error
        return None


CLIENT_TURNS = 4


async def _let_client_tasks_run(turns: int = CLIENT_TURNS) -> None:
    """A few turns of the event loop before the next batch's decisions, which run without awaiting:
    a batch wakes the producer's sender (the handler's records) and the consumer's fetcher (records
    were taken), and each gets to the socket only several loop turns later (a future's callback, its
    ``asyncio.wait``'s callback, a task step), so without these turns their requests would wait out
    the next batch's CPU work."""
    for _ in range(turns):
        await asyncio.sleep(0)


class BatchConsumer:
    """One consumer-group member over several topics: each poll's records, all topics together, go to
    ``handle``, and their offsets are committed once it returned.

    With a :class:`PoisonGuard`, a message that keeps failing is dead-lettered and the partition moves
    on; what is left to raise is an outage, which the consumer waits out. When ``handle`` raises, the
    consumer seeks back to the poll's first offsets and polls them again
    after ``retry_seconds`` (handlers are idempotent; what can never be handled goes to a dead-letter
    topic instead). One consumer for all of a service's topics means one fetch loop, one poll and one
    handler call per batch, where a subscriber per topic polls and handles each on its own.

    A task of its own polls all the time and buffers what it gets here (at most two batches' worth),
    so the client's fetcher keeps fetching while a batch is handled: aiokafka sends no fetch to a
    broker while records it fetched from it are not taken, so a consumer that polled only between
    batches let records that reached the broker mid-batch wait out the next batch too.

    Offsets are committed by a task of their own, the newest handled ones at most every 0.1 s, so the
    next poll does not wait for the commit's round trip. A crash can therefore redeliver a few batches
    more than the last one; handlers are idempotent, so that costs only their time.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        group: ConsumerGroup,
        topics: Sequence[Topic],
        handle: BatchHandler,
        *,
        guard: PoisonGuard | None = None,
        retry_seconds: float = 1.0,
    ) -> None:
        namespace = Namespace(settings.namespace)
        self._settings = settings
        self._group = namespace.group(group)
        self._topics = [namespace.topic(t) for t in topics]
        self._handle = handle
        self._guard = guard
        self._outages = OncePerInterval()
        self._retry_seconds = retry_seconds
        self._handled: dict[TopicPartition, int] = {}
        self._to_commit = asyncio.Event()
        self._polled: list[dict[TopicPartition, list[ConsumerRecord]]] = []
        self._arrived = asyncio.Event()
        self._taken = asyncio.Event()

    async def run(self) -> None:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=settings.kafka_bootstrap,
            client_id=f"millrace-{settings.service_name}",
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            max_poll_records=settings.kafka_max_poll_records,
        )
        committer: asyncio.Task[None] | None = None
        poller: asyncio.Task[None] | None = None
        try:
            await consumer.start()
            committer = asyncio.create_task(self._commit_handled(consumer), name="kafka-commit")
            while True:
                if poller is None:
                    self._polled.clear()
                    poller = asyncio.create_task(self._poll(consumer), name="kafka-poll")
                batch = await self._next_batch(poller)
                handled = await self._handle_polled(batch)
                await _let_client_tasks_run()
                if not handled:
                    # Stop polling, then seek every partition back to its first record not handled:
                    # the failed batch's, or one polled past it and dropped with the buffer.
                    poller.cancel()
                    await asyncio.gather(poller, return_exceptions=True)
                    poller = None
                    first: dict[TopicPartition, int] = {}
                    for polled in (batch, *self._polled):
                        for partition, records in polled.items():
                            first.setdefault(partition, records[0].offset)
                    for partition, offset in first.items():
                        consumer.seek(partition, offset)
                    await asyncio.sleep(self._retry_seconds)
        finally:
            for task in (poller, committer):
                if task is not None:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)
            if committer is not None:
                await self._commit(consumer)
            await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        settings = self._settings
        while True:
            while (
                sum(len(r) for polled in self._polled for r in polled.values())
                >= 2 * settings.kafka_max_poll_records
            ):
                self._taken.clear()
                await self._taken.wait()
            polled = await consumer.getmany(
                timeout_ms=settings.kafka_batch_timeout_ms, max_records=settings.kafka_max_poll_records
            )
            if polled:
                self._polled.append(polled)
                self._arrived.set()

    async def _next_batch(self, poller: asyncio.Task[None]) -> dict[TopicPartition, list[ConsumerRecord]]:
        """Everything polled so far (waiting for the first records), merged per partition in order,
        about ``max_poll_records`` records at most; the rest waits for the next batch."""
        while not self._polled:
            self._arrived.clear()
            arrived = asyncio.create_task(self._arrived.wait())
            done, _ = await asyncio.wait({arrived, poller}, return_when=asyncio.FIRST_COMPLETED)
            arrived.cancel()
            if poller in done:
                poller.result()  # the poller failed: its error ends this run (the service restarts it)
        batch: dict[TopicPartition, list[ConsumerRecord]] = {}
        taken = 0
        while self._polled and taken < self._settings.kafka_max_poll_records:
            for partition, records in self._polled.pop(0).items():
                batch.setdefault(partition, []).extend(records)
                taken += len(records)
        self._taken.set()
        return batch

    async def _commit_handled(self, consumer: AIOKafkaConsumer, *, every_seconds: float = 0.1) -> None:
        """Commit what was handled, at most every ``every_seconds`` (the batches between coalesce)."""
        while True:
            await self._to_commit.wait()
            self._to_commit.clear()
            await self._commit(consumer)
            await asyncio.sleep(every_seconds)

    async def _commit(self, consumer: AIOKafkaConsumer) -> None:
        offsets, self._handled = self._handled, {}
        if not offsets:
            return
        try:
            await consumer.commit(offsets)
        except KafkaError as error:
            # The partitions moved to another member meanwhile: it handles the records again and
            # finds them processed (the processed-message record was written with their effects).
            log.warning(
                "offsets not committed after a rebalance", extra={"ids": {"error": type(error).__name__}}
            )

    async def _handle_polled(self, polled: dict[TopicPartition, list[ConsumerRecord]]) -> bool:
        records = [record for batch in polled.values() for record in batch]
        try:
            if self._guard is None:
                await self._handle(records)
            else:
                await self._guard.handle(self._handle, records)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            missing = unreachable_dependency(error)
            if missing is None:
                log.exception(
                    "a polled batch failed; it will be polled again", extra={"ids": {"records": len(records)}}
                )
            elif self._outages.due(missing):
                log.warning(
                    "waiting for a dependency to come back; batches are polled again (said once per 30 s)",
                    extra={"ids": {"dependency": missing, "error": type(error).__name__}},
                )
            return False
        self._handled.update({partition: batch[-1].offset + 1 for partition, batch in polled.items()})
        self._to_commit.set()
        return True
