"""Transactional outbox: messages are written in the same database transaction as the state change
that caused them, then published and deleted. A crash between commit and publish leaves the rows,
which a relay publishes on its next pass (so delivery is at-least-once; consumers dedupe).

Two relays: :class:`OutboxRelay` (here) reads one producer's rows back from the table and suits any
service; ``platform.live_relay.LiveRelay`` is handed the rows by the code that has just committed them,
so the hot path (the orchestrator) never reads its outbox back, and only sweeps rows a crashed process
left. This module has what both write and read: the rows, their producer names and messages.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from aiokafka.errors import KafkaTimeoutError
from sqlalchemy import Row, delete, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_common.contracts.messages.envelope import DeadLetter, DeadLetterCause, utc_now
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RECORDS_EVENTS, Namespace
from millrace_common.platform.bulk import Write, execute_together, insert_write
from millrace_common.platform.kafka import fitted_letter
from millrace_common.platform.outages import OncePerInterval, unreachable_dependency
from millrace_common.platform.producer import Producer
from millrace_common.platform.tables import outbox

log = logging.getLogger(__name__)

_RELAY_LOCK_SPACE = 7131
"""The first key of the relay's advisory locks (the second is the producer's and schema's hash);
``millrace-migrate`` uses the single key 7130, a lock space of its own."""

_RELAY_LOCK = text(
    f"select pg_try_advisory_xact_lock({_RELAY_LOCK_SPACE}, hashtext(current_schema() || '.' || :producer))"
)


PLAIN_INDEX_SCANS_ONLY = (
    "select set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true),"
    " set_config('max_parallel_workers_per_gather', '0', true), set_config('jit', 'off', true)"
)
"""Run first in a transaction that counts a producer's outbox rows by name (the outbox gauge). The
outbox is a queue: its statistics describe whatever moment autoanalyze caught, tens of thousands of
rows at a peak and a few an instant later, and its heap keeps the size of its peaks (115 MB for
about 1,000 live rows in the benchmark). Planned on a peak's figures, the gauge read that whole heap
with two parallel workers, up to 46 ms every 5 s, against under a millisecond through the producer
index (``0014_outbox_producer_pattern``). Bitmap scans are off too: see :data:`BACKLOG`. And JIT
compilation: a plan that cannot do without a disabled scan is costed at ten billion, far over
``jit_above_cost``, and compiling it took PostgreSQL 46-268 ms a pass, for a read of under a
millisecond (seen with generic plans forced, where ``like`` cannot use the index)."""

BACKLOG = (
    "select count(*), min(created_at) from (select created_at from outbox where producer = :producer"
    " union all select created_at from outbox where producer like :instances) as waiting"
)
"""How many rows ``producer`` (with its instances' ``<producer>@<instance>`` rows) has waiting, and
when the oldest was written. Run after :data:`PLAIN_INDEX_SCANS_ONLY`: each half is a plain index
scan, which marks the index entries of rows that were deleted for good as it passes them, so the
next pass skips them. A bitmap scan (the plan of the two conditions joined by ``or``) marks nothing,
and under load every pass visited each row deleted since the last vacuum: up to 120 ms."""


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


def records(namespace: Namespace, messages: Sequence[Outgoing]) -> list[Record]:
    return [(namespace.topic(m.topic), m.key.encode(), m.payload()) for m in messages]
