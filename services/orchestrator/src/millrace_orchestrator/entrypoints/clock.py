"""Fires due durable timers: each due row becomes a FireTimer command for the run's owner, written
to the outbox in the transaction that deletes the row, so a timer fires once even across crashes
(at least once on Kafka; the run's log makes the second delivery a no-op). It also prunes the
per-minute run counts (``workflow_starts``) that are too old to matter. ``RetentionLoop`` prunes the
run log.

The loop sleeps until the earliest timer in the table is due (at least ``GATHER_SECONDS``, so timers
due close together fire in one pass), and at most ``max_sleep_seconds``; a
timer this process writes that is due sooner wakes it (:meth:`TimerLoop.scheduled`, fed the events of
each committed batch). So a timer fires at its time, and one written by another orchestrator that
stopped before firing it fires at most ``max_sleep_seconds`` late, without a probe of the table five
times a second while nothing is due."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from millrace_common.contracts.messages.run_commands import FireTimer
from millrace_common.contracts.messages.run_events import RunEvent, TimerScheduled
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS, Namespace
from millrace_common.platform.live_relay import LiveRelay
from millrace_common.platform.outbox import outbox_write, records
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.tables import timers, workflow_starts
from sqlalchemy import delete, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_orchestrator.service_layer.retention import RunRetention

PRUNE_INTERVAL_SECONDS = 300.0
LOCKED_RETRY_SECONDS = 0.05
GATHER_SECONDS = 0.02
"""The shortest sleep before a timer's time: timers due close together fire in one pass (one
transaction), and instances waking for the same timer do not query back to back."""
WAKE_MARGIN_SECONDS = 0.001
"""Slept past a timer's time, so the clock has reached it on waking."""


class TimerLoop:
    def __init__(
        self,
        engine: AsyncEngine,
        direct: DirectConnections,
        namespace: Namespace,
        relay: LiveRelay,
        clock: Callable[[], datetime],
        *,
        max_sleep_seconds: float = 1.0,
        batch_size: int = 500,
    ) -> None:
        self._engine = engine
        self._direct = direct
        self._namespace = namespace
        self._relay = relay
        self._clock = clock
        self._max_sleep = max_sleep_seconds
        self._batch_size = batch_size
        self._woken = asyncio.Event()
        # When the loop's sleep ends; None while it is awake (any new timer then wakes the next sleep).
        self._wake_at: datetime | None = None

    def scheduled(self, events: Sequence[RunEvent]) -> None:
        """Told the events of a committed batch: a timer due before the loop would wake wakes it."""
        for event in events:
            if isinstance(event, TimerScheduled) and (self._wake_at is None or event.fire_at < self._wake_at):
                self._woken.set()
                return

    async def next_due(self) -> datetime | None:
        """When the earliest timer is due (one index probe on a direct connection), None without any."""
        async with self._direct.connection() as connection:
            cursor = await connection.execute("select min(fire_at) from timers", prepare=True)
            row = await cursor.fetchone()
        return row[0] if row else None

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
            self._wake_at = None
            self._woken.clear()
            due = await self.next_due()
            now = self._clock()
            if due is not None and due <= now:
                if not await self.fire_due():
                    await asyncio.sleep(LOCKED_RETRY_SECONDS)  # another instance is firing them
                continue  # more may be due (past a full batch), or come due by now
            delay = (
                self._max_sleep
                if due is None
                else min(self._max_sleep, max(GATHER_SECONDS, (due - now).total_seconds()))
            )
            self._wake_at = now + timedelta(seconds=delay)
            try:
                await asyncio.wait_for(self._woken.wait(), delay + WAKE_MARGIN_SECONDS)
            except TimeoutError:
                pass


class RetentionLoop:
    """Prunes the run log every ``interval_seconds``, the first time at start."""

    def __init__(self, retention: RunRetention, *, interval_seconds: float) -> None:
        self._retention = retention
        self._interval = interval_seconds

    async def run(self) -> None:
        while True:
            await self._retention.prune()
            await asyncio.sleep(self._interval)
