"""The dead-letter index (``dead_letters``), the gateway's table: rows added as the dead-letter
topics are read, states changed by replay and discard. Every function works inside the caller's
transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timedelta

from millrace_common.platform.pruning import PruneStatement
from millrace_common.platform.tables import dead_letters
from sqlalchemy import Row, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_gateway.adapters.pages import Page, fetch_page
from millrace_gateway.domain.dead_letters import DeadLetterState, IndexedLetter

LISTED = [c for c in dead_letters.c if c.name not in {"value", "trace", "headers"}]
"""What a list shows: everything but the large columns, which one letter's view has."""


async def add(connection: AsyncConnection, letters: Sequence[IndexedLetter], now: datetime) -> int:
    """Index the letters; one indexed before (the same dead-letter record read again, or the same
    original message dead-lettered twice) is left as it is. Returns how many rows are new."""
    if not letters:
        return 0
    rows = [
        {**asdict(letter), "indexed_at": now, "state": DeadLetterState.PENDING.value} for letter in letters
    ]
    result = await connection.execute(
        pg_insert(dead_letters).values(rows).on_conflict_do_nothing().returning(dead_letters.c.id)
    )
    return len(result.all())


async def page(
    connection: AsyncConnection,
    *,
    tenant_id: str | None,
    topic: str | None,
    tenant: str | None,
    cause: str | None,
    reason: str | None,
    state: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> Page:
    """Dead letters, newest first. ``tenant_id`` limits them to a tenant (None: every tenant, for a
    platform operator); ``tenant`` is the filter a platform operator may choose; ``reason`` matches
    part of the reason, ignoring case."""
    query = select(*LISTED)
    if tenant_id is not None:
        query = query.where(dead_letters.c.tenant_id == tenant_id)
    if tenant is not None:
        query = query.where(dead_letters.c.tenant_id == tenant)
    if topic is not None:
        query = query.where(dead_letters.c.topic == topic)
    if cause is not None:
        query = query.where(dead_letters.c.cause == cause)
    if reason is not None:
        escaped = reason.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(dead_letters.c.reason.ilike(f"%{escaped}%", escape="\\"))
    if state is not None:
        query = query.where(dead_letters.c.state == state)
    if since is not None:
        query = query.where(dead_letters.c.dead_lettered_at >= since)
    if until is not None:
        query = query.where(dead_letters.c.dead_lettered_at < until)
    query = query.order_by(dead_letters.c.dead_lettered_at.desc(), dead_letters.c.id.desc())
    return await fetch_page(connection, query, limit=limit, offset=offset)


async def one(
    connection: AsyncConnection, letter_id: int, tenant_id: str | None, *, lock: bool = False
) -> Row | None:
    query = select(dead_letters).where(dead_letters.c.id == letter_id)
    if tenant_id is not None:
        query = query.where(dead_letters.c.tenant_id == tenant_id)
    if lock:
        query = query.with_for_update()
    return (await connection.execute(query)).first()


async def mark(connection: AsyncConnection, letter_id: int, state: DeadLetterState, **values: object) -> None:
    await connection.execute(
        update(dead_letters).where(dead_letters.c.id == letter_id).values(state=state.value, **values)
    )


async def replaying(connection: AsyncConnection, *, requested_before: datetime, limit: int) -> Sequence[Row]:
    """Replays asked for before ``requested_before`` whose bytes Kafka has not taken yet, locked (a
    replay the request itself is sending is skipped, not waited for)."""
    return (
        await connection.execute(
            select(dead_letters)
            .where(
                dead_letters.c.state == DeadLetterState.REPLAYING.value,
                dead_letters.c.replay_requested_at < requested_before,
            )
            .order_by(dead_letters.c.replay_requested_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()


async def pending_counts(connection: AsyncConnection) -> list[tuple[str, str, int]]:
    """(topic, cause, count) of the pending dead letters."""
    rows = await connection.execute(
        select(dead_letters.c.topic, dead_letters.c.cause, func.count())
        .where(dead_letters.c.state == DeadLetterState.PENDING.value)
        .group_by(dead_letters.c.topic, dead_letters.c.cause)
    )
    return [(topic, cause, count) for topic, cause, count in rows]


def resolved_prune(keep: timedelta) -> PruneStatement:
    """Replayed and discarded letters, ``keep`` after they were resolved (pending ones stay until someone
    acts on them: they are the ones the page is for)."""
    return PruneStatement(
        "dead_letters",
        "delete from dead_letters where id in (select id from dead_letters"
        " where state in ('replayed', 'discarded') and coalesce(replayed_at, discarded_at) < :before"
        " order by id limit :batch for update skip locked) returning id",
        keep,
    )
