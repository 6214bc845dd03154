"""The approval service's loops driven by the clock: deadlines passed are escalated, and the pending
gauge refreshed on every tenth pass; closed approvals are pruned once their retention has passed."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from millrace_common.platform.pruning import PruneLoop
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_approval.adapters.retention import statements
from millrace_approval.service_layer.approvals import Approvals
from millrace_approval.settings import ApprovalSettings


class DeadlineLoop:
    """Escalations come from the ``approval_deadlines`` table, so a restart loses none."""

    def __init__(self, approvals: Approvals, *, poll_seconds: float) -> None:
        self._approvals = approvals
        self._poll_seconds = poll_seconds

    async def run(self) -> None:
        ticks = 0
        while True:
            await self._approvals.escalate_due()
            if ticks % 10 == 0:
                await self._approvals.refresh_pending_gauge()
            ticks += 1
            await asyncio.sleep(self._poll_seconds)


def retention_loop(
    engine: AsyncEngine, settings: ApprovalSettings, clock: Callable[[], datetime]
) -> PruneLoop:
    """Prunes closed approvals every ``MILLRACE_RETENTION_INTERVAL_SECONDS``."""
    pruned = statements(closed_keep=timedelta(days=settings.approval_retention_days))
    return PruneLoop(engine, pruned, clock, interval_seconds=settings.retention_interval_seconds)
