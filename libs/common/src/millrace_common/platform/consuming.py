"""One way to consume Kafka. Every consumer of every service hands a handler decoded messages
(:class:`Delivery`: the message, its topic and record) and learns what was handled from the handler's
explicit acknowledgements (:meth:`Delivery.ack`): a consumer commits an offset only once its message,
and every message before it on its partition, was acknowledged. What does not decode never reaches a
handler: it goes to its dead-letter topic with the reason (or, for a consumer without a group, is
counted and skipped).

Three consumers stand behind that contract, each for a way of working the others cannot serve:

- :class:`BatchConsumer`: one consumer-group member over several topics; a poll's messages go to the
  handler as one batch (the orchestrator, the trigger and the approval services). With a
  :class:`PoisonGuard`, a message that keeps failing is dead-lettered and its partition moves on.
- ``millrace_common.platform.lanes.LaneConsumer``: a group member that runs messages one by one, several at a
  time per topic ("lanes"), acknowledged out of order as each finishes (the node runner).
- ``millrace_common.platform.tailing.TailConsumer``: no group, no commits; follows a topic from its end
  (the gateway's live feed).

Producing is ``millrace_common.platform.producer``. FastStream's subscribers, which these replace, are
not used: they poll and handle per subscriber and commit after each handler call, where these consumers
keep fetching while a batch is handled, coalesce commits in time, seek back from the first message
not acknowledged, and run a lane's messages concurrently (``docs/architecture.md``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from millrace_common.contracts.messages.envelope import DeadLetterCause
from millrace_common.contracts.topics import ConsumerGroup, Namespace
from millrace_common.platform import fetch_wait, fetcher_mend
from millrace_common.platform.consumer_watch import Membership
from millrace_common.platform.deliveries import Decoder, Delivery, Handler, ack_all
from millrace_common.platform.fetch_wait import FETCHER_TIMEOUT_MS, IDLE_POLL_MS, Quiet
from millrace_common.platform.gathering import Gathering
from millrace_common.platform.kafka import DeadLetters, inject_fault
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.outages import OncePerInterval, unreachable_dependency
from millrace_common.platform.settings import ServiceSettings

__all__ = ["BatchConsumer", "Decoder", "Delivery", "Handler", "PoisonGuard", "ack_all"]
"""Delivery, Decoder, Handler and ack_all live in ``platform.deliveries`` and are taken from here too."""

log = logging.getLogger(__name__)


HANDLING_ATTEMPTS = 3
"""How many times a message is handled on its own before it is dead-lettered."""


class PoisonGuard:
    """Calls a handler so that no message can hold back the others on its partition.

    A batch that fails for any reason but an outage (``millrace_common.platform.outages``) is handled
    again one message at a time (those not acknowledged yet); a message that fails ``attempts`` times on
    its own goes to its dead-letter topic with the reason, the error's type and a short trace, the
    attempts and its coordinates, and is acknowledged, so the partition moves on. Handlers are idempotent,
    so the batch's other messages may be handled twice. An outage is raised to the caller, which waits it
    out: a message is never dead-lettered because PostgreSQL or Kafka was away."""

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

    async def handle(self, handle: Handler, deliveries: Sequence[Delivery[Any]]) -> None:
        failure = await self._failure_of(handle, deliveries)
        if failure is None:
            return
        log.warning(
            "a batch failed; handling its messages one at a time",
            extra={"ids": {"records": len(deliveries), "error": type(failure).__name__}},
        )
        for delivery in deliveries:
            for attempt in range(1, self._attempts + 1):
                if delivery.acked:
                    break
                failure = await self._failure_of(handle, [delivery])
                if failure is None:
                    break
                if attempt == self._attempts:
                    reason = f"handling failed {attempt} times: {type(failure).__name__}: {failure}"
                    await self._dead_letters.send(
                        delivery.topic,
                        delivery.record,
                        reason,
                        error=failure,
                        attempts=attempt,
                        cause=DeadLetterCause.FAILED,
                    )
                    delivery.ack()
                else:
                    await asyncio.sleep(self._pause_seconds * attempt)

    async def _failure_of(self, handle: Handler, deliveries: Sequence[Delivery[Any]]) -> Exception | None:
        """Handle ``deliveries``: None when that worked, the error when it failed; an outage is raised."""
        try:
            inject_fault(self._fault_marker, [d.record for d in deliveries])
            await handle(deliveries)
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


Polled = dict[TopicPartition, list[ConsumerRecord]]


class BatchConsumer:
    """One consumer-group member over several topics: each poll's records, all topics together, are
    decoded and go to ``handle`` as one batch; the offsets of what it acknowledged are committed.

    With a :class:`PoisonGuard`, a message that keeps failing is dead-lettered and the partition moves
    on; what is left to raise is an outage, which the consumer waits out. When ``handle`` raises, or
    returns without acknowledging everything, the consumer seeks each partition back to its first
    message not acknowledged and polls again after ``retry_seconds`` (handlers are idempotent; what can
    never be handled goes to a dead-letter topic instead). One consumer for all of a service's topics
    means one fetch loop, one poll and one handler call per batch, where a subscriber per topic polls
    and handles each on its own.

    A task of its own polls all the time and buffers what it gets here (at most two batches' worth),
    so the client's fetcher keeps fetching while a batch is handled: aiokafka sends no fetch to a
    broker while records it fetched from it are not taken, so a consumer that polled only between
    batches let records that reached the broker mid-batch wait out the next batch too.

    With a per-tenant family among the decoder's topics, the consumer subscribes by pattern and finds a
    new tenant's topic within ``discovery_seconds`` (how often it reads the cluster's topic list).

    Offsets are committed by a task of their own, the newest handled ones at most every 0.1 s, so the
    next poll does not wait for the commit's round trip. A crash can therefore redeliver a few batches
    more than the last one; handlers are idempotent, so that costs only their time.

    With a :class:`~millrace_common.platform.gathering.Gathering`, a small batch of a consumer that is
    busy nearly all the time waits a moment for more records before it is handled.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        group: ConsumerGroup,
        decoder: Decoder,
        handle: Handler,
        *,
        guard: PoisonGuard | None = None,
        retry_seconds: float = 1.0,
        discovery_seconds: float | None = None,
        gathering: Gathering | None = None,
    ) -> None:
        self._settings = settings
        if gathering is not None and gathering.below_records > settings.kafka_max_poll_records:
            # A batch takes at most about max_poll_records: a larger bound would never end a wait.
            gathering = dataclasses.replace(gathering, below_records=settings.kafka_max_poll_records)
        self._gathering = gathering
        self._discovery_ms = int(discovery_seconds * 1000) if discovery_seconds else 300_000
        self._group = Namespace(settings.namespace).group(group)
        self._decoder = decoder
        self._handle = handle
        self._guard = guard
        self._outages = OncePerInterval()
        self._retry_seconds = retry_seconds
        self._handled: dict[TopicPartition, int] = {}
        self._to_commit = asyncio.Event()
        self._polled: list[Polled] = []
        self._arrived = asyncio.Event()
        self._taken = asyncio.Event()
        self.membership = Membership(f"group {self._group}", decoder.topics, self._group)
        """What Kafka assigned this member, for readiness (``millrace_common.platform.consumer_watch``)."""

    async def run(self) -> None:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            **client_options(settings),
            client_id=f"millrace-{settings.service_name}",
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=settings.kafka_fetch_max_wait_ms,
            consumer_timeout_ms=FETCHER_TIMEOUT_MS,
            max_poll_records=settings.kafka_max_poll_records,
            # With a per-tenant family, a new tenant's topic is found when the metadata is next read.
            metadata_max_age_ms=self._discovery_ms,
        )
        if self._decoder.pattern is None:
            consumer.subscribe(self._decoder.topics, listener=self.membership)
        else:
            consumer.subscribe(pattern=self._decoder.pattern, listener=self.membership)
        committer: asyncio.Task[None] | None = None
        poller: asyncio.Task[None] | None = None
        try:
            await consumer.start()
            fetcher_mend.mend(consumer)
            fetch_wait.install(
                consumer,
                partial_ms=settings.kafka_fetch_max_wait_ms,
                full_ms=settings.kafka_full_fetch_max_wait_ms,
            )
            committer = asyncio.create_task(self._commit_handled(consumer), name="kafka-commit")
            while True:
                if poller is None:
                    self._polled.clear()
                    poller = asyncio.create_task(self._poll(consumer), name="kafka-poll")
                idle = time.monotonic()
                await self._first_records(poller)
                idle = time.monotonic() - idle
                if self._gathering is not None:
                    await self._gather(poller, self._gathering)
                batch = self._take()
                handling = time.monotonic()
                unhandled = await self._handle_polled(batch)
                await _let_client_tasks_run()
                if self._gathering is not None:
                    # The retry's sleep after a failed batch below counts as neither.
                    self._gathering.handled(idle_seconds=idle, handling_seconds=time.monotonic() - handling)
                if unhandled:
                    # Stop polling, then seek every partition back to its first record not handled:
                    # the batch's first not acknowledged, or one polled past it and dropped with the buffer.
                    poller.cancel()
                    await asyncio.gather(poller, return_exceptions=True)
                    poller = None
                    first = dict(unhandled)
                    for polled in self._polled:
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
            self.membership.left()
            await consumer.stop()

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        settings = self._settings
        quiet = Quiet()
        while True:
            while self._polled_records() >= 2 * settings.kafka_max_poll_records:
                self._taken.clear()
                await self._taken.wait()
            # An empty poll's wait bounds only idle looping (records end it at once): idle, a second.
            timeout_ms = IDLE_POLL_MS if quiet.idle else settings.kafka_batch_timeout_ms
            polled = await consumer.getmany(
                timeout_ms=timeout_ms, max_records=settings.kafka_max_poll_records
            )
            quiet.observe(bool(polled), time.monotonic())
            if polled:
                self._polled.append(polled)
                self._arrived.set()

    async def _first_records(self, poller: asyncio.Task[None]) -> None:
        """Wait until something was polled."""
        while not self._polled:
            await self._arrival(poller, None)

    async def _gather(self, poller: asyncio.Task[None], gathering: Gathering) -> None:
        """Wait as long as ``gathering`` says for more records, or until the batch has enough."""
        deadline = time.monotonic() + gathering.wait_for(self._polled_records())
        while (left := deadline - time.monotonic()) > 0 and self._polled_records() < gathering.below_records:
            await self._arrival(poller, left)

    async def _arrival(self, poller: asyncio.Task[None], timeout: float | None) -> None:
        """Wait for the poller's next records, at most ``timeout`` seconds."""
        self._arrived.clear()
        arrived = asyncio.create_task(self._arrived.wait())
        try:
            done, _ = await asyncio.wait(
                {arrived, poller}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            arrived.cancel()
        if poller in done:
            poller.result()  # the poller failed: its error ends this run (the service restarts it)

    def _polled_records(self) -> int:
        return sum(len(records) for polled in self._polled for records in polled.values())

    def _take(self) -> Polled:
        """Everything polled so far, merged per partition in order, about ``max_poll_records`` records
        at most; the rest waits for the next batch."""
        batch: Polled = {}
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

    async def _handle_polled(self, polled: Polled) -> dict[TopicPartition, int]:
        """Handle a batch; the first offset of each partition not handled (nothing when all was).

        Handled means acknowledged, or refused (dead-lettered) while decoding: when the handler fails
        (an outage, say), each partition comes again from its first decoded message not acknowledged,
        so a record that did not decode before it is not dead-lettered again each time the batch is
        tried (one after it is, as everything after it comes again)."""
        records = [record for batch in polled.values() for record in batch]
        deliveries: list[Delivery[Any]] | None = None
        try:
            deliveries = await self._decoder.decode(records)
            if self._guard is None:
                await self._handle(deliveries)
            else:
                await self._guard.handle(self._handle, deliveries)
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
            if deliveries is None:  # decoding failed (a dead letter could not be sent): all again
                return {partition: batch[0].offset for partition, batch in polled.items()}
            return self._positions(polled, deliveries)
        unacked = self._positions(polled, deliveries)
        if unacked:
            log.error(
                "a handler returned without acknowledging every message; those come again",
                extra={"ids": {"records": len(records), "unacknowledged": len(unacked)}},
            )
        return unacked

    def _positions(self, polled: Polled, deliveries: Sequence[Delivery[Any]]) -> dict[TopicPartition, int]:
        """Note each partition's handled position for the committer; return the first offset of each
        partition whose decoded messages were not all acknowledged."""
        unacked: dict[TopicPartition, int] = {}
        for delivery in deliveries:
            if not delivery.acked:
                unacked.setdefault(delivery.partition, delivery.offset)
        for partition, batch in polled.items():
            position = unacked.get(partition, batch[-1].offset + 1)
            if position > batch[0].offset:
                self._handled[partition] = position
        self._to_commit.set()
        return unacked
