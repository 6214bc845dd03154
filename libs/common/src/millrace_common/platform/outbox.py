"""Transactional outbox: messages are written in the same database transaction as the state change
that caused them, then published and deleted. A crash between commit and publish leaves the rows,
which a relay publishes on its next pass (so delivery is at-least-once; consumers dedupe).

Two relays: :class:`OutboxRelay` reads one producer's rows back from the table and suits any
service; :class:`LiveRelay` is handed the rows by the code that has just committed them, so the
hot path (the orchestrator) never reads its outbox back, and only sweeps rows a crashed process left.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Sequence
from typing import Any

import psycopg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaTimeoutError
from sqlalchemy import Row, delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_common.contracts.messages.envelope import DeadLetter, DeadLetterCause, utc_now
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RECORDS_EVENTS, Namespace
from millrace_common.platform.bulk import Write, execute_together, insert_write
from millrace_common.platform.kafka import fitted_letter, key_partitioner
from millrace_common.platform.outages import OncePerInterval, unreachable_dependency
from millrace_common.platform.pg import DirectConnections, array_literal
from millrace_common.platform.producer import Producer, kafka_producer
from millrace_common.platform.settings import ServiceSettings
from millrace_common.platform.tables import outbox

log = logging.getLogger(__name__)

_RELAY_LOCK_SPACE = 7131
"""The first key of the relay's advisory locks (the second is the producer's and schema's hash);
``millrace-migrate`` uses the single key 7130, a lock space of its own."""

_RELAY_LOCK = text(
    f"select pg_try_advisory_xact_lock({_RELAY_LOCK_SPACE}, hashtext(current_schema() || '.' || :producer))"
)


RECORDS_PRODUCER = "records"
"""The producer name of every ``records.events`` row, whichever service writes it. A record is changed
through the API (the gateway) and by record nodes (the node runner): one key, two services. Under one
name, one relay pass at a time publishes them all (:class:`OutboxRelay`), in the order the changes
committed (each takes the record's row first), so a record's events keep their order across services
as they do across instances. Each service that writes record events runs a relay of this name too."""

_SHARED_PRODUCERS = {RECORDS_EVENTS.name: RECORDS_PRODUCER}


def producer_for(producer: str, message: Outgoing) -> str:
    """The producer name ``message``'s row is stored under: the topic's shared name when more than one
    service writes its keys (``RECORDS_PRODUCER``), else the writing service's own ``producer``."""
    return _SHARED_PRODUCERS.get(message.topic.name, producer)


def outbox_write(
    namespace: Namespace,
    producer: str,
    messages: Sequence[Outgoing],
    *,
    param: str = "outbox",
    returning_ids: bool = False,
) -> Write:
    """The insert of ``producer``'s outbox rows, to run with the caller's other writes (returning
    the rows' ids in order when asked, for a :class:`LiveRelay`)."""
    rows = outbox_rows(namespace, producer, messages)
    return insert_write(outbox, rows, param=param, returning="id" if returning_ids else None)


def outbox_rows(namespace: Namespace, producer: str, messages: Sequence[Outgoing]) -> list[dict[str, Any]]:
    """``producer``'s outbox rows for ``messages``, as the ``outbox`` table's columns (no ``id``)."""
    now = utc_now()
    return [
        {
            "producer": producer,
            "topic": namespace.topic(m.topic),
            "key": m.key.encode(),
            "value": m.payload(),
            "created_at": now,
        }
        for m in messages
    ]


async def enqueue(
    connection: AsyncConnection, namespace: Namespace, producer: str, messages: Sequence[Outgoing]
) -> None:
    """Add messages to ``producer``'s outbox inside the caller's transaction (record events under
    :data:`RECORDS_PRODUCER`, :func:`producer_for`)."""
    by_producer: dict[str, list[Outgoing]] = {}
    for message in messages:
        by_producer.setdefault(producer_for(producer, message), []).append(message)
    if by_producer:
        await execute_together(
            connection,
            [
                outbox_write(namespace, name, group, param=f"outbox{i}")
                for i, (name, group) in enumerate(by_producer.items())
            ],
        )


class OutboxRelay:
    """Publishes one producer's outbox rows in insertion order and deletes them once Kafka has
    acknowledged them.

    Every instance of a service writes rows under the same producer name, and any of them may write
    any key (a record created through one gateway and changed through another). So one relay at a
    time publishes a producer's rows: a pass holds a transaction-level advisory lock of the producer
    (and the schema) from reading its rows to deleting them. Another instance's pass waits for it and
    then starts again from the oldest row left, so a key's rows reach Kafka in the order they were
    written even when the instance that took the older one is slow, or dies holding it (its
    transaction rolls back, which frees the lock and the rows). A key's rows are written by
    transactions that take the key's own row first (the record, the approval), so their ids grow in
    commit order. A transaction-level lock works behind PgBouncer in transaction mode; a holder that
    stops answering (a frozen process) is ended by PostgreSQL after ``idle_in_transaction_session_timeout``,
    which each pass sets to twice its acknowledgement time plus 30 s."""

    def __init__(
        self,
        engine: AsyncEngine,
        kafka: Producer,
        producer: str,
        *,
        batch_size: int = 2000,
        ack_timeout_seconds: float = 30.0,
        busy_wait_seconds: float = 0.02,
    ) -> None:
        self._engine = engine
        self._busy_wait = busy_wait_seconds
        self._producer = producer
        self._kafka = kafka
        self._batch_size = batch_size
        self._ack_timeout = ack_timeout_seconds
        self._lock = asyncio.Lock()
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Ask the background pass (``run``) to publish now, without waiting for it: a consumer
        that committed rows goes on with its next batch while Kafka acknowledges these."""
        self._woken.set()

    async def publish_pending(self) -> int:
        """Publish what is waiting now (after another instance's pass, when one is under way);
        returns how many messages this instance sent."""
        total = 0
        async with self._lock:
            while True:
                sent = await self._publish_one_batch()
                if sent is None:  # another instance relays this producer's rows: wait for its pass
                    await asyncio.sleep(self._busy_wait)
                    continue
                total += sent
                if sent < self._batch_size:
                    return total

    async def _publish_one_batch(self) -> int | None:
        """One batch, or None when another instance holds the producer's relay lock."""
        async with self._engine.begin() as connection:
            if not (await connection.execute(_RELAY_LOCK, {"producer": self._producer})).scalar_one():
                return None
            idle_ms = int((2 * self._ack_timeout + 30) * 1000)
            await connection.execute(text(f"set local idle_in_transaction_session_timeout = {idle_ms}"))
            rows = (
                await connection.execute(
                    select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value)
                    .where(outbox.c.producer == self._producer)
                    .order_by(outbox.c.id)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not rows:
                return 0
            try:
                pending = [
                    await self._kafka.publish(row.value, topic=row.topic, key=row.key, no_confirm=True)
                    for row in rows
                ]
                await self._acknowledged(asyncio.gather(*pending))
            except Exception as error:
                if unreachable_dependency(error) is not None:
                    raise
                # Kafka refused something in the batch for what it is: send the rows one at a time,
                # so a row that is refused again goes to its dead-letter topic and the rest go on.
                for row in rows:
                    await self._publish_or_dead_letter(row)
            await connection.execute(delete(outbox).where(outbox.c.id.in_([row.id for row in rows])))
        return len(rows)

    async def _acknowledged(self, sent: Awaitable[object]) -> None:
        """Wait for Kafka's acknowledgement, at most ``ack_timeout_seconds``: after a broker restart a
        send can wait for an answer that never comes, and the relay (and every use case waiting for
        it) would wait with it, its rows locked. Past the time it is an outage: the transaction rolls
        back, the rows stay, and the next pass sends them again (consumers dedupe)."""
        try:
            await asyncio.wait_for(sent, timeout=self._ack_timeout)
        except TimeoutError as error:
            raise KafkaTimeoutError(
                f"Kafka did not acknowledge the outbox rows of {self._producer} in {self._ack_timeout:g} s"
            ) from error

    async def _publish_or_dead_letter(self, row: Row) -> None:
        try:
            await self._acknowledged(self._kafka.publish(row.value, topic=row.topic, key=row.key))
            return
        except Exception as error:
            if unreachable_dependency(error) is not None:
                raise
            refusal = error
        reason = f"Kafka refused the outbox row of {self._producer}: {type(refusal).__name__}: {refusal}"
        letter = DeadLetter(
            source_topic=row.topic,
            partition=-1,
            offset=-1,
            key=row.key.decode(errors="replace") if row.key else None,
            reason=reason[:2000],
            consumer_group=f"outbox:{self._producer}",
            raw_value="",
            raw_value_base64=base64.b64encode(bytes(row.value)).decode(),
            error_type=type(refusal).__name__,
            cause=DeadLetterCause.KAFKA_REFUSED,
        )
        await self._kafka.publish(
            fitted_letter(letter).model_dump_json().encode(),
            topic=f"{row.topic}.dlq",
            key=row.key,
            headers={"millrace-reason": reason[:500]},
        )
        log.error(
            "an outbox row Kafka refused went to its dead-letter topic",
            extra={"ids": {"topic": row.topic, "producer": self._producer, "reason": reason[:300]}},
        )

    async def run(self, interval_seconds: float = 0.5, sweep_seconds: float = 5.0) -> None:
        """The background pass: publishes when woken; after a pass that found rows, again within
        ``interval_seconds``; otherwise every ``sweep_seconds`` whatever is left (rows of a process that
        died between its commit and its wake-up). Rows written by this process wake it, so the sweep
        only bounds how long another's leftovers wait, and an idle service does not read its outbox
        twice a second. While PostgreSQL or Kafka is away it tries again every ``interval_seconds`` and
        says so once per 30 s."""
        outages = OncePerInterval()
        wait = interval_seconds
        while True:
            try:
                await asyncio.wait_for(self._woken.wait(), timeout=wait)
            except TimeoutError:
                pass
            self._woken.clear()
            try:
                wait = interval_seconds if await self.publish_pending() else sweep_seconds
            except asyncio.CancelledError:
                raise
            except Exception as error:
                wait = interval_seconds
                missing = unreachable_dependency(error)
                if missing is None:
                    raise
                if outages.due(missing):
                    log.warning(
                        "outbox rows wait for a dependency (said once per 30 s)",
                        extra={"ids": {"producer": self._producer, "dependency": missing}},
                    )
                await asyncio.sleep(interval_seconds)


Record = tuple[str, bytes | None, bytes]
"""A message as Kafka takes it: the topic's full name, the key, the value."""


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


def records(namespace: Namespace, messages: Sequence[Outgoing]) -> list[Record]:
    return [(namespace.topic(m.topic), m.key.encode(), m.payload()) for m in messages]


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
