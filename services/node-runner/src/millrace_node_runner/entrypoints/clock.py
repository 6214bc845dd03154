"""The node runner's loops driven by the clock: the retention pass over the tables it writes, and the
delivery of notifications."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from millrace_common.platform.pruning import PruneLoop
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_node_runner.adapters.retention import statements
from millrace_node_runner.service_layer.notifications import Notifications
from millrace_node_runner.settings import NodeRunnerSettings

log = logging.getLogger(__name__)


def retention_loop(
    engine: AsyncEngine, settings: NodeRunnerSettings, clock: Callable[[], datetime]
) -> PruneLoop:
    """Prunes results, AI answers, the token ledger and done tasks every
    ``MILLRACE_RETENTION_INTERVAL_SECONDS``."""
    pruned = statements(
        results_keep=timedelta(days=settings.runner_retention_days),
        usage_keep=timedelta(days=settings.ai_usage_retention_days),
        tasks_keep=timedelta(days=settings.task_retention_days),
        notifications_keep=timedelta(days=settings.notification_retention_days),
    )
    return PruneLoop(engine, pruned, clock, interval_seconds=settings.retention_interval_seconds)


class NotificationLoop:
    """Plans and delivers notifications every ``MILLRACE_NOTIFICATION_POLL_SECONDS``; a pass that fails
    (PostgreSQL away) is logged and tried again at the next tick."""

    def __init__(self, notifications: Notifications, *, poll_seconds: float) -> None:
        self._notifications = notifications
        self._poll_seconds = poll_seconds

    async def run(self) -> None:
        while True:
            try:
                await self._notifications.run_once()
            except Exception:
                log.exception("a notification pass failed; trying again")
            await asyncio.sleep(self._poll_seconds)
