"""Transactional outbox: messages are written in the same database transaction as the state change
that caused them, then published and deleted. A crash between commit and publish leaves the rows,
which the relay publishes on its next pass (so delivery is at-least-once; consumers dedupe)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from faststream.kafka import KafkaBroker
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_common.bulk import Write, execute_together, insert_write
from millrace_common.messages.envelope import Envelope, utc_now
from millrace_common.tables import outbox
from millrace_common.topics import Namespace, Topic

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """A message to publish once the transaction that produced it commits."""

    topic: Topic
    key: str
    message: Envelope
    value: bytes | None = None  # the message already serialised, when the caller has it

    def payload(self) -> bytes:
        return self.value if self.value is not None else self.message.to_bytes()


def outbox_write(namespace: Namespace, producer: str, messages: Sequence[Outgoing], *, param: str = "outbox") -> Write:
    """The insert of ``producer``'s outbox rows, to run with the caller's other writes."""
    now = utc_now()
    rows = [
        {
            "producer": producer,
            "topic": namespace.topic(m.topic),
            "key": m.key.encode(),
            "value": m.payload(),
            "created_at": now,
        }
        for m in messages
    ]
    return insert_write(outbox, rows, param=param)


async def enqueue(
    connection: AsyncConnection, namespace: Namespace, producer: str, messages: Sequence[Outgoing]
) -> None:
    """Add messages to ``producer``'s outbox inside the caller's transaction."""
    if messages:
        await execute_together(connection, [outbox_write(namespace, producer, messages)])


class OutboxRelay:
    """Publishes one producer's outbox rows in insertion order and deletes them once Kafka has
    acknowledged them (each service relays only its own rows, so per-key order holds)."""

    def __init__(self, engine: AsyncEngine, broker: KafkaBroker, producer: str, *, batch_size: int = 2000) -> None:
        self._engine = engine
        self._producer = producer
        self._broker = broker
        self._batch_size = batch_size
        self._lock = asyncio.Lock()
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Ask the background pass (``run``) to publish now, without waiting for it: a consumer
        that committed rows goes on with its next batch while Kafka acknowledges these."""
        self._woken.set()

    async def publish_pending(self) -> int:
        """Publish what is waiting now; returns how many messages went out."""
        total = 0
        async with self._lock:
            while True:
                sent = await self._publish_one_batch()
                total += sent
                if sent < self._batch_size:
                    return total

    async def _publish_one_batch(self) -> int:
        async with self._engine.begin() as connection:
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
            pending = [
                await self._broker.publish(row.value, topic=row.topic, key=row.key, no_confirm=True) for row in rows
            ]
            await asyncio.gather(*pending)
            await connection.execute(delete(outbox).where(outbox.c.id.in_([row.id for row in rows])))
        return len(rows)

    async def run(self, interval_seconds: float = 0.5) -> None:
        """The background pass: publishes when woken, and every ``interval_seconds`` whatever is
        left (rows of a crash or a failed publish)."""
        while True:
            try:
                await asyncio.wait_for(self._woken.wait(), timeout=interval_seconds)
            except TimeoutError:
                pass
            self._woken.clear()
            await self.publish_pending()
