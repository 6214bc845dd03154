"""Fires due durable timers: each due row becomes a FireTimer command for the run's owner, written
to the outbox in the transaction that deletes the row, so a timer fires once even across crashes
(at least once on Kafka; the run's log makes the second delivery a no-op). It also prunes the
per-minute run counts (``workflow_starts``) that are too old to matter. ``RetentionLoop`` prunes the
run log."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from millrace_common.contracts.messages.run_commands import FireTimer
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS, Namespace
from millrace_common.platform.outbox import LiveRelay, outbox_write, records
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.tables import timers, workflow_starts
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_orchestrator.service_layer.retention import RunRetention

PRUNE_INTERVAL_SECONDS = 300.0


class TimerLoop:
    def __init__(
        self,
        engine: AsyncEngine,
        direct: DirectConnections,
        namespace: Namespace,
        relay: LiveRelay,
        clock: Callable[[], datetime],
        *,
        interval_seconds: float = 0.2,
        batch_size: int = 500,
    ) -> None:
        self._engine = engine
        self._direct = direct
        self._namespace = namespace
        self._relay = relay
        self._clock = clock
        self._interval = interval_seconds
        self._batch_size = batch_size

    async def any_due(self) -> bool:
        """Whether a timer is due: one index probe on a direct connection, so looking five times a
        second costs next to nothing while no timer is due."""
        async with self._direct.connection() as connection:
            cursor = await connection.execute(
                "select exists (select 1 from timers where fire_at <= %s)", (self._clock(),), prepare=True
            )
            row = await cursor.fetchone()
        return bool(row and row[0])

    async def fire_due(self) -> int:
        """Hand every timer due now to its run; returns how many fired."""
        async with self._engine.begin() as connection:
            due = (
                await connection.execute(
                    select(timers.c.timer_id, timers.c.run_id, timers.c.tenant_id)
                    .where(timers.c.fire_at <= self._clock())
                    .order_by(timers.c.fire_at)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            if not due:
                return 0
            commands = [
                Outgoing(
                    RUNS_COMMANDS,
                    str(row.run_id),
                    FireTimer(
                        tenant_id=row.tenant_id,
                        correlation_id=row.run_id,
                        run_id=row.run_id,
                        timer_id=row.timer_id,
                    ),
                )
                for row in due
            ]
            write = outbox_write(self._namespace, self._relay.tag, commands, returning_ids=True)
            ids = list((await connection.execute(text(write.sql), write.params)).scalars())
            await connection.execute(
                delete(timers).where(timers.c.timer_id.in_([row.timer_id for row in due]))
            )
        await self._relay.hand_over(ids, records(self._namespace, commands))
        return len(due)

    async def prune_starts(self) -> int:
        """Forget the per-minute run counts older than two hours (a workflow's load looks back one)."""
        async with self._engine.begin() as connection:
            result = await connection.execute(
                delete(workflow_starts).where(workflow_starts.c.minute < self._clock() - timedelta(hours=2))
            )
        return result.rowcount

    async def run(self) -> None:
        next_prune = time.monotonic()
        while True:
            if time.monotonic() >= next_prune:
                await self.prune_starts()
                next_prune = time.monotonic() + PRUNE_INTERVAL_SECONDS
            if not await self.any_due() or await self.fire_due() < self._batch_size:
                await asyncio.sleep(self._interval)


class RetentionLoop:
    """Prunes the run log every ``interval_seconds``, the first time at start."""

    def __init__(self, retention: RunRetention, *, interval_seconds: float) -> None:
        self._retention = retention
        self._interval = interval_seconds

    async def run(self) -> None:
        while True:
            await self._retention.prune()
            await asyncio.sleep(self._interval)
