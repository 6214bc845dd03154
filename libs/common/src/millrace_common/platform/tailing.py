"""The third consumer of ``millrace_common.platform.consuming``'s contract: no group, no commits; it
follows a topic from its end, so every process sees every message (the gateway's live feed). What does
not decode is counted and skipped: an observer does not dead-letter."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from millrace_common.platform import fetch_wait, fetcher_mend
from millrace_common.platform.consumer_watch import Membership
from millrace_common.platform.consuming import Decoder, Handler
from millrace_common.platform.fetch_wait import FETCHER_TIMEOUT_MS
from millrace_common.platform.kafka_security import client_options
from millrace_common.platform.settings import KafkaClientSettings

log = logging.getLogger(__name__)

WAKE_SECONDS = 5.0
"""How long :meth:`TailConsumer.watch_from_now` waits for the topic's end before it lets the tail go."""


class TailConsumer:
    """Follows a topic from its end without a consumer group (so nothing is committed and every
    process sees every message): each poll's decoded messages go to ``handle``; acknowledging is not
    needed. After a restart of :meth:`run` it goes on from the offsets it had reached. With ``wanted``,
    a record it refuses is passed over undecoded (an observer that follows a few keys of a busy topic
    need not parse the rest).

    With ``watched``, a tail that nobody watches as it starts, or nobody has watched for
    ``pause_after_seconds``, stops fetching (its partitions paused: no fetch requests, no records to
    read past) and :meth:`watch_from_now` starts it again from the topic's end, for an observer that
    wants only what comes after it starts watching (the gateway's live feed while no stream is
    open)."""

    def __init__(
        self,
        kafka: KafkaClientSettings,
        client_id: str,
        decoder: Decoder,
        handle: Handler,
        *,
        fetch_max_wait_ms: int = 500,
        full_fetch_max_wait_ms: int | None = None,
        wanted: Callable[[ConsumerRecord], bool] | None = None,
        watched: Callable[[], bool] | None = None,
        pause_after_seconds: float = 30.0,
    ) -> None:
        self._kafka = kafka
        self._watched = watched
        self._pause_after_seconds = pause_after_seconds
        self._consumer: AIOKafkaConsumer | None = None
        self._paused = False
        self._watched_at = time.monotonic()
        self._waking = asyncio.Lock()
        self._wanted = wanted
        # Without a long wait of its own, a fetch that holds every partition waits the short one too.
        self._full_fetch_max_wait_ms = full_fetch_max_wait_ms or fetch_max_wait_ms
        self._client_id = client_id
        self._decoder = decoder
        self._handle = handle
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self.membership = Membership(f"tail {client_id}", decoder.topics, None)
        """What this consumer follows and how far it got, for readiness."""
        self._positions = self.membership.positions
        self.ready = asyncio.Event()

    async def run(self) -> None:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._kafka.kafka_bootstrap,
            **client_options(self._kafka),
            client_id=self._client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="latest",
            fetch_max_wait_ms=self._fetch_max_wait_ms,
            consumer_timeout_ms=FETCHER_TIMEOUT_MS,
        )
        await consumer.start()
        fetcher_mend.mend(consumer)
        fetch_wait.install(consumer, partial_ms=self._fetch_max_wait_ms, full_ms=self._full_fetch_max_wait_ms)
        try:
            await self._position(consumer)
            self._consumer = consumer
            self._begin(consumer, time.monotonic())
            self.ready.set()
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                now = time.monotonic()
                for partition, records in batches.items():
                    kept = records if self._wanted is None else [r for r in records if self._keeps(r)]
                    if kept:
                        await self._handle(await self._decoder.decode(kept))
                    self._positions[partition] = records[-1].offset + 1
                self._maybe_pause(consumer, now)
        finally:
            self.ready.clear()
            self._consumer = None
            if self._paused:
                self._positions.clear()  # its offsets are old: a restart begins at the end
            self.membership.left()
            await consumer.stop()

    @property
    def paused(self) -> bool:
        """Whether the tail stopped fetching because nobody watched it."""
        return self._paused

    def _begin(self, consumer: AIOKafkaConsumer, now: float) -> None:
        """A consumer just positioned: a tail nobody watches pauses at once (after a start nobody
        can be, and a restart keeps fetching only while someone is)."""
        self._paused = False
        self._watched_at = now
        if self._watched is not None and not self._watched():
            self._pause(consumer)

    def _maybe_pause(self, consumer: AIOKafkaConsumer, now: float) -> None:
        if self._watched is None or self._paused:
            return
        if self._watched():
            self._watched_at = now
        elif now - self._watched_at >= self._pause_after_seconds:
            self._pause(consumer)

    def _pause(self, consumer: AIOKafkaConsumer) -> None:
        if consumer.assignment():
            consumer.pause(*consumer.assignment())
            self._paused = True
            self.membership.held = frozenset()  # nothing is read, so no lag to judge

    async def watch_from_now(self) -> None:
        """Make sure the tail fetches; a paused one starts again from the topic's end. Returns once
        every message published from now on will be read (call it after the watcher is registered,
        so the tail is not paused again under it), or after ``WAKE_SECONDS`` while the tail is not
        running (a restart: the new consumer takes its positions before it is ready)."""
        self._watched_at = time.monotonic()
        async with self._waking:
            consumer = self._consumer
            if consumer is None or not self.ready.is_set():
                await self._until_ready()
                return
            if not self._paused:
                return
            partitions = consumer.assignment()
            paused_at = {tp: self._positions[tp] for tp in partitions if tp in self._positions}
            try:
                async with asyncio.timeout(WAKE_SECONDS):
                    await consumer.seek_to_end(*partitions)
                    ends = {tp: await consumer.position(tp) for tp in partitions}
            except Exception as error:
                if self._consumer is not consumer:
                    # The consumer stopped under the seek (its run ended): the next one takes its
                    # positions before it is ready.
                    await self._until_ready()
                    return
                # The end was not read (in time): go on from where it paused instead, a backlog to
                # read past but nothing missed.
                log.warning(
                    "tail: the topic's end was not read; reading on from where it paused",
                    extra={"ids": {"client": self._client_id, "error": type(error).__name__}},
                )
                for tp, position in paused_at.items():
                    consumer.seek(tp, position)
            else:
                self._positions.update(ends)
            consumer.resume(*partitions)
            self._paused = False
            self._watched_at = time.monotonic()
            self.membership.held = frozenset(partitions)

    async def _until_ready(self) -> None:
        try:
            await asyncio.wait_for(self.ready.wait(), WAKE_SECONDS)
        except TimeoutError:
            log.warning(
                "tail: not running; a watcher goes on without it", extra={"ids": {"client": self._client_id}}
            )

    def _keeps(self, record: ConsumerRecord) -> bool:
        """``wanted``'s answer; a record it fails on is kept (the decoder judges it), so a predicate's
        bug cannot hold the consumer on one record."""
        try:
            return bool(self._wanted(record))  # type: ignore[misc]
        except Exception:
            log.exception(
                "tail: the record filter failed; the record is decoded",
                extra={"ids": {"offset": record.offset}},
            )
            return True

    async def _position(self, consumer: AIOKafkaConsumer) -> None:
        # Without a group, subscribing assigns every partition once the topic's metadata has arrived.
        consumer.subscribe(self._decoder.topics)
        waited = 0.0
        while not consumer.assignment():
            await asyncio.sleep(0.05)
            waited += 0.05
            if waited >= 5:
                log.warning(
                    "tail: no partitions assigned yet", extra={"ids": {"topics": self._decoder.topics}}
                )
                waited = 0.0
        for partition in consumer.assignment():
            if partition in self._positions:
                consumer.seek(partition, self._positions[partition])
            else:
                self._positions[partition] = await consumer.position(partition)
        self.membership.held = frozenset(consumer.assignment())
