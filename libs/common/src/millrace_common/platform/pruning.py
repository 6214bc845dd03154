"""Deleting old rows without holding long locks: a statement deletes at most a batch of rows (found
by an index, locked with ``for update skip locked``, so a row a writer holds is left for the next
pass), each statement is its own short transaction, and a pause between batches leaves the database
to the live traffic. Each service lists its own statements (``PruneStatement``) and runs them from its
clock (``PruneLoop``)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PruneStatement:
    """Deletes at most ``:batch`` rows older than ``:before`` (now less ``keep``) and returns a row per
    row deleted from its leading table."""

    name: str
    sql: str
    keep: timedelta


async def prune_batches(
    engine: AsyncEngine,
    statement: PruneStatement,
    now: datetime,
    *,
    batch: int = 1000,
    pause_seconds: float = 0.0,
) -> int:
    """Run ``statement`` a batch per transaction until a batch comes back short; returns the rows."""
    removed = 0
    query = text(statement.sql)
    while True:
        async with engine.begin() as connection:
            count = len(
                (await connection.execute(query, {"before": now - statement.keep, "batch": batch})).all()
            )
        removed += count
        if count < batch:
            return removed
        if pause_seconds:
            await asyncio.sleep(pause_seconds)


class PruneLoop:
    """Runs every statement every ``interval_seconds``."""

    def __init__(
        self,
        engine: AsyncEngine,
        statements: Sequence[PruneStatement],
        clock: Callable[[], datetime],
        *,
        interval_seconds: float,
        batch: int = 1000,
        pause_seconds: float = 0.05,
    ) -> None:
        self._engine = engine
        self._statements = statements
        self._clock = clock
        self._interval = interval_seconds
        self._batch = batch
        self._pause = pause_seconds

    async def prune(self) -> dict[str, int]:
        """One pass over every statement; the rows each removed."""
        removed: dict[str, int] = {}
        for statement in self._statements:
            removed[statement.name] = await prune_batches(
                self._engine, statement, self._clock(), batch=self._batch, pause_seconds=self._pause
            )
        if any(removed.values()):
            log.info("pruned old rows", extra={"ids": removed})
        return removed

    async def run(self) -> None:
        while True:
            await self.prune()
            await asyncio.sleep(self._interval)
