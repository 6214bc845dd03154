"""Dead-letter use cases: index what the dead-letter topics receive; list, show, replay and discard.

A replay is two steps, so that asking twice never sends twice: the transaction that finds the letter
pending marks it ``replaying`` (a second request finds it so and is refused), then the original
message is sent, under the row's lock, and the letter marked ``replayed``. A replay whose sending
failed (Kafka away, the process stopped) stays ``replaying`` and is sent by :meth:`DeadLetterDesk.resend`,
which the gateway runs in the background."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from millrace_common.contracts.messages.envelope import DeadLetter, utc_now
from millrace_common.contracts.topics import Namespace, source_of
from millrace_common.platform.consuming import Delivery
from millrace_common.platform.outages import unreachable_dependency
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters import dead_letters
from millrace_gateway.adapters.pages import Page
from millrace_gateway.adapters.replays import ReplayPublisher
from millrace_gateway.domain.dead_letters import (
    DeadLetterState,
    indexed,
    refuse_unless_pending,
    refuse_unless_replayable,
)
from millrace_gateway.domain.refusals import NotFound

log = logging.getLogger(__name__)

RESEND_AFTER = timedelta(seconds=10)
"""A replay still ``replaying`` this long after it was asked for lost its sender (Kafka was away, or
the process stopped): the background pass sends it. Longer than a send takes while Kafka is up."""


@dataclass(frozen=True)
class Filters:
    topic: str | None = None
    tenant: str | None = None
    cause: str | None = None
    reason: str | None = None
    state: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_NO_PREFIX = Namespace()


class DeadLetterDesk:
    """What an operator does with dead letters. ``scope`` is the tenant whose letters the caller may
    see, or None for a platform operator (every tenant's)."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: ReplayPublisher,
        clock: Callable[[], datetime] = utc_now,
        *,
        namespace: Namespace = _NO_PREFIX,
    ) -> None:
        self._namespace = namespace
        self._engine = engine
        self._publisher = publisher
        self._clock = clock

    async def index(self, deliveries: Sequence[Delivery[Any]]) -> int:
        """Index the dead letters read from the dead-letter topics; returns how many are new."""
        letters = []
        for delivery in deliveries:
            letter: DeadLetter = delivery.message
            source = source_of(delivery.topic)
            proven = self._namespace.tenant_of(source, letter.source_topic) if source.per_tenant else None
            letters.append(
                indexed(source.name, delivery.record.partition, delivery.offset, letter, proven_tenant=proven)
            )
        async with self._engine.begin() as connection:
            return await dead_letters.add(connection, letters, self._clock())

    async def page(self, scope: str | None, filters: Filters, *, limit: int, offset: int) -> Page:
        async with self._engine.connect() as connection:
            return await dead_letters.page(
                connection,
                tenant_id=scope,
                topic=filters.topic,
                tenant=filters.tenant,
                cause=filters.cause,
                reason=filters.reason,
                state=filters.state,
                since=filters.since,
                until=filters.until,
                limit=limit,
                offset=offset,
            )

    async def get(self, scope: str | None, letter_id: int) -> Row:
        async with self._engine.connect() as connection:
            return await _found(connection, letter_id, scope)

    async def discard(self, scope: str | None, letter_id: int, *, by: str) -> Row:
        """Set a pending dead letter aside for good: it no longer lists as pending."""
        async with self._engine.begin() as connection:
            row = await _found(connection, letter_id, scope, lock=True)
            refuse_unless_pending(row.state, replayed_at=row.replayed_at, by=row.replayed_by)
            await dead_letters.mark(
                connection, letter_id, DeadLetterState.DISCARDED, discarded_at=self._clock(), discarded_by=by
            )
            return await _found(connection, letter_id, scope)

    async def replay(self, scope: str | None, letter_id: int, *, by: str) -> Row:
        """Send a pending dead letter's original message back to its original topic, once. A letter
        replayed before is refused (``already_replayed``). Returns the letter as it is now: ``replayed``,
        or ``replaying`` when Kafka is away (it is sent once Kafka is back)."""
        async with self._engine.begin() as connection:
            row = await _found(connection, letter_id, scope, lock=True)
            refuse_unless_pending(row.state, replayed_at=row.replayed_at, by=row.replayed_by)
            refuse_unless_replayable(row.value_truncated, row.topic)
            await dead_letters.mark(
                connection,
                letter_id,
                DeadLetterState.REPLAYING,
                replay_requested_at=self._clock(),
                replayed_by=by,
            )
        try:
            async with self._engine.begin() as connection:
                row = await _found(connection, letter_id, scope, lock=True)
                if row.state == DeadLetterState.REPLAYING:
                    await self._send(connection, row)
        except Exception as error:
            if unreachable_dependency(error) is None:
                raise
            log.warning(
                "a replay waits for Kafka or PostgreSQL; it is sent when they are back",
                extra={"ids": {"dead_letter": letter_id, "dependency": unreachable_dependency(error)}},
            )
        return await self.get(scope, letter_id)

    async def resend(self, *, batch: int = 50) -> int:
        """Send the replays that lost their sender; returns how many were sent."""
        async with self._engine.begin() as connection:
            rows = await dead_letters.replaying(
                connection, requested_before=self._clock() - RESEND_AFTER, limit=batch
            )
            for row in rows:
                await self._send(connection, row)
        return len(rows)

    async def _send(self, connection: AsyncConnection, row: Row) -> None:
        await self._publisher.send(row)
        await dead_letters.mark(connection, row.id, DeadLetterState.REPLAYED, replayed_at=self._clock())
        log.info(
            "a dead letter was replayed",
            extra={"ids": {"dead_letter": row.id, "topic": row.topic, "tenant_id": row.tenant_id}},
        )

    async def pending_counts(self) -> list[tuple[str, str, int]]:
        async with self._engine.connect() as connection:
            return await dead_letters.pending_counts(connection)


async def _found(
    connection: AsyncConnection, letter_id: int, scope: str | None, *, lock: bool = False
) -> Row:
    row = await dead_letters.one(connection, letter_id, scope, lock=lock)
    if row is None:
        raise NotFound("dead letter")
    return row
