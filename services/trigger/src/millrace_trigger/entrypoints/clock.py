"""The trigger service's loops driven by the clock: scheduler ticks and the hourly retention pass."""

from __future__ import annotations

import asyncio

from millrace_trigger.service_layer.retention import Retention
from millrace_trigger.service_layer.schedules import Scheduler


class SchedulerLoop:
    """Ticks the scheduler every ``tick_seconds``; after a tick that handled a whole batch, at once
    again, so a backlog of due schedules is not worked off one batch per tick."""

    def __init__(self, scheduler: Scheduler, *, tick_seconds: float) -> None:
        self._scheduler = scheduler
        self._tick_seconds = tick_seconds

    async def run(self) -> None:
        """The scheduler loop (a background task of the service)."""
        while True:
            handled = await self._scheduler.tick()
            if handled < self._scheduler.batch:
                await asyncio.sleep(self._tick_seconds)


class RetentionLoop:
    """Prunes once an hour."""

    def __init__(self, retention: Retention, *, interval_seconds: float = 3600) -> None:
        self._retention = retention
        self._interval_seconds = interval_seconds

    async def run(self) -> None:
        while True:
            await self._retention.prune()
            await asyncio.sleep(self._interval_seconds)
