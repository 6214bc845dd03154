"""The outbox relay of the hot paths: :class:`LiveRelay` is handed the rows the code has just
committed and publishes them at once, deletes them once Kafka acknowledged them, and sweeps only the
rows a crashed process left (``platform.outbox`` has the rows, their writing and the polling relay)."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Sequence
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer

from millrace_common.platform.kafka import key_partitioner
from millrace_common.platform.outbox import Record
from millrace_common.platform.pg import DirectConnections, array_literal
from millrace_common.platform.producer import kafka_producer
from millrace_common.platform.settings import ServiceSettings

log = logging.getLogger(__name__)


async def delete_rows(connection: psycopg.AsyncConnection[Any], ids: Sequence[int]) -> None:
    """Delete the outbox rows ``ids`` (those Kafka acknowledged), planned anew each time.

    Prepared (psycopg prepares a statement run five times on a connection), PostgreSQL plans it once
    for any array: on an outbox nearly empty, as it is after a quiet spell, that plan scans the table
    and tests each row against the array element by element. When a burst then fills the outbox, each
    delete compares every row with every id, the ids acknowledged meanwhile pile up for the next one,
    and the relay's connection spent 14 s of a core on one delete while 18,000 rows waited
    (docs/benchmarks.md). Planned with its array, the statement finds the rows through the primary
    key, or hashes the array where it scans."""
    await connection.execute(
        "delete from outbox where id = any(cast(%s as bigint[]))", (array_literal(ids),), prepare=False
    )


class LiveRelay:
    """Publishes outbox rows handed over by the code that has just committed them, then deletes them.

    Its rows carry the producer name ``<producer>@<instance>`` (:attr:`tag`), ``instance`` new for each
    process. At start, and then every ``sweep_interval_seconds``, the relay publishes and deletes the
    producer's rows older than ``orphan_age_seconds`` that it does not hold itself: those of a process
    that died between its commit and its publish, rows under the plain producer name (as an
    :class:`OutboxRelay` producer writes them), and its own rows that were written but never handed
    over. A live instance's rows are normally gone within milliseconds, so only one that lags that
    long sees its rows published twice. Publishing happens in the
    order rows were handed over, on a producer of the relay's own (idempotent, all acks), so a key's
    messages keep their order; after a crash, the swept rows may reach Kafka after newer ones of the
    same key, and a row may be published twice (consumers dedupe, as for any outbox).
    """

    def __init__(
        self,
        settings: ServiceSettings,
        connections: DirectConnections,
        producer: str,
        *,
        instance: str | None = None,
        sweep_interval_seconds: float = 5.0,
        orphan_age_seconds: float = 10.0,
        batch_size: int = 2000,
    ) -> None:
        self.tag = f"{producer}@{instance or uuid.uuid4().hex[:12]}"
        self._producer_name = producer
        self._like = f"{producer}@%"
        self._settings = settings
        self._connections = connections
        self._sweep_interval = sweep_interval_seconds
        self._orphan_age = orphan_age_seconds
        self._batch_size = batch_size
        self._pending: deque[tuple[list[int], list[Record]]] = deque()
        self._in_flight: deque[tuple[list[int], list[Record], asyncio.Future]] = deque()
        self._acked: list[int] = []
        self._acked_since = 0.0
        self._woken = asyncio.Event()
        self._partitions: dict[str, list[int]] = {}
        self._producer: AIOKafkaProducer | None = None
        self._sending = asyncio.Lock()

    async def hand_over(self, ids: Sequence[int], messages: Sequence[Record]) -> None:
        """Rows just committed (their ids, and their messages) to publish now: they go to the
        producer's record batches before this returns (behind anything handed over before), and the
        acknowledgement is awaited by the relay's own task. Nothing is raised here: a send that fails
        leaves the rows queued, and the relay's task sends them again."""
        if not ids:
            return
        self._pending.append((list(ids), list(messages)))
        producer = self._producer
        if producer is None:
            self._woken.set()
            return
        try:
            await self._send_handed_over(producer)
        except Exception:
            log.exception("handing rows to Kafka failed; the relay sends them again")
            self._woken.set()

    def hand_over_later(self, ids: Sequence[int], messages: Sequence[Record]) -> None:
        """Rows just committed, for the relay's own task to send at once: the caller (a request that
        answers as soon as its rows are durable) never waits for Kafka, which may be away. The rows go
        behind anything handed over before, so their order holds."""
        if ids:
            self._pending.append((list(ids), list(messages)))
            self._woken.set()

    async def run(self) -> None:
        """The background pass; restarted by the service after an error, with what was handed over
        and not acknowledged still queued (so it is sent again)."""
        producer = kafka_producer(
            self._settings,
            client_id=f"millrace-{self._settings.service_name}-relay",
            linger_ms=0,  # the relay builds whole record batches itself: lingering would only delay them
        )
        try:
            await producer.start()
            async with self._sending:
                # After a restart, what was sent and not acknowledged goes again, first and in order.
                self._pending.extendleft(reversed([(ids, messages) for ids, messages, _ in self._in_flight]))
                self._in_flight.clear()
                self._producer = producer
            await self._sweep(producer, older_than_seconds=self._orphan_age)
            next_sweep = time.monotonic() + self._sweep_interval
            while True:
                busy = self._in_flight or self._acked
                try:
                    await asyncio.wait_for(self._woken.wait(), timeout=0.02 if busy else self._sweep_interval)
                except TimeoutError:
                    pass
                self._woken.clear()
                await self._send_handed_over(producer)
                await self._forget_acknowledged()
                if time.monotonic() >= next_sweep:
                    # Partition counts are read again (from the producer's metadata, refreshed every
                    # 5 minutes), so partitions added to a topic are used as every other producer does.
                    self._partitions.clear()
                    await self._sweep(producer, older_than_seconds=self._orphan_age)
                    next_sweep = time.monotonic() + self._sweep_interval
        finally:
            self._producer = None
            await self._flush_on_stop()
            await producer.stop()

    async def _flush_on_stop(self, timeout_seconds: float = 5.0) -> None:
        """On the way out, wait a little for what is in flight and delete what Kafka acknowledged,
        so a clean stop leaves no rows for the next start to publish again."""
        try:
            pending = [acks for _, _, acks in self._in_flight]
            if pending:
                await asyncio.wait(pending, timeout=timeout_seconds)
            self._acked_since = 0.0
            await self._forget_acknowledged(force=True)
        except Exception:
            log.warning("outbox rows left for the next start to publish", exc_info=True)

    async def _send_handed_over(self, producer: AIOKafkaProducer) -> None:
        """Send everything handed over, without waiting for the acknowledgements of what went before:
        the idempotent producer keeps each partition's order, and the lock keeps the order of sends."""
        async with self._sending:
            while self._pending and self._producer is producer:
                ids, messages = self._pending.popleft()
                try:
                    acks = asyncio.gather(*await self._send(producer, messages))
                except BaseException:
                    self._pending.appendleft((ids, messages))  # sent again, by this call or the next
                    raise
                acks.add_done_callback(lambda _: self._woken.set())
                self._in_flight.append((ids, messages, acks))

    async def _forget_acknowledged(self, *, force: bool = False) -> None:
        """Collect the ids Kafka acknowledged, in order (a failed send raises, and the service restarts
        the relay, which sends again what is not acknowledged); delete them when 1,000 are waiting or
        the oldest has waited 0.1 s: a delete a batch cost as much as the rest of the relay."""
        while self._in_flight and self._in_flight[0][2].done():
            ids, _, acks = self._in_flight[0]
            acks.result()
            self._in_flight.popleft()
            if not self._acked:
                self._acked_since = time.monotonic()
            self._acked.extend(ids)
        if self._acked and (force or len(self._acked) >= 1000 or time.monotonic() - self._acked_since >= 0.1):
            ids, self._acked = self._acked, []
            try:
                async with self._connections.connection() as connection:
                    await delete_rows(connection, ids)
            except BaseException:
                self._acked = ids + self._acked  # deleted on the next pass
                raise

    async def _send(self, producer: AIOKafkaProducer, messages: Sequence[Record]) -> list[asyncio.Future]:
        """Send messages as one record batch per partition (split when a batch is full), keeping each
        partition's order: per message, ``send`` costs several times more than appending to a batch."""
        by_partition: dict[tuple[str, int], list[Record]] = {}
        for message in messages:
            topic, key = message[0], message[1]
            partitions = self._partitions.get(topic)
            if partitions is None:
                partitions = self._partitions[topic] = sorted(await producer.partitions_for(topic))
            by_partition.setdefault((topic, key_partitioner(key, partitions, partitions)), []).append(message)
        acks = []
        for (topic, partition), batch_messages in by_partition.items():
            batch = producer.create_batch()
            for _, key, value in batch_messages:
                if batch.append(timestamp=None, key=key, value=value) is None:
                    acks.append(await producer.send_batch(batch, topic, partition=partition))
                    batch = producer.create_batch()
                    batch.append(timestamp=None, key=key, value=value)  # a batch's first record always fits
            acks.append(await producer.send_batch(batch, topic, partition=partition))
        return acks

    async def _sweep(self, producer: AIOKafkaProducer, *, older_than_seconds: float) -> int:
        """Publish and delete rows of this producer older than ``older_than_seconds`` that this relay
        does not hold: another instance's that died between its write and its publish (or that lags
        that long), rows under the plain producer name, and this instance's own rows that were
        written but never handed over (a write whose reply was lost)."""
        total = 0
        known = [i for ids, _ in self._pending for i in ids]
        known += [i for ids, _, _ in self._in_flight for i in ids] + self._acked
        held = array_literal(known)
        while True:
            async with self._connections.connection() as connection, connection.transaction():
                cursor = await connection.execute(
                    "delete from outbox where id in (select id from outbox"
                    " where (producer = %s or producer like %s) and not (id = any(cast(%s as bigint[])))"
                    " and created_at <= now() - make_interval(secs => %s)"
                    " order by id limit %s for update skip locked) returning id, topic, key, value",
                    (self._producer_name, self._like, held, older_than_seconds, self._batch_size),
                    prepare=False,  # planned with its array, as delete_rows says
                )
                rows = sorted(await cursor.fetchall())
                left = [
                    (topic, bytes(key) if key is not None else None, bytes(value))
                    for _, topic, key, value in rows
                ]
                await asyncio.gather(*await self._send(producer, left))
            total += len(rows)
            if rows:
                log.warning("published outbox rows no relay had sent", extra={"ids": {"count": len(rows)}})
            if len(rows) < self._batch_size:
                return total
