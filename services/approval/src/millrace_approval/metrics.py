"""Approval gauges read from the database: what waits, and what waits past its deadline.

(Decisions and time to decision are counted where they happen, in ``handlers.ApprovalMetrics``.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from millrace_common.messages.envelope import utc_now
from millrace_common.tables import approvals
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_approval.domain.approvals import Status


class ApprovalGauges:
    """Every approval instance reports the same values: dashboards and alerts take ``max``."""

    name = "approvals"

    def __init__(
        self, registry: CollectorRegistry, engine: AsyncEngine, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.overdue = Gauge(
            "millrace_approvals_overdue",
            "Approvals still pending after their deadline (the escalation or timeout is late)",
            registry=registry,
        )
        self.oldest_pending_age = Gauge(
            "millrace_approval_oldest_pending_age_seconds",
            "How long the oldest pending approval has waited (0 when none)",
            registry=registry,
        )

    async def collect(self) -> None:
        now = self._clock()
        async with self._engine.connect() as connection:
            overdue, oldest = (
                await connection.execute(
                    select(
                        func.count().filter(approvals.c.due_at < now), func.min(approvals.c.requested_at)
                    ).where(approvals.c.status == Status.PENDING.value)
                )
            ).one()
        self.overdue.set(overdue)
        self.oldest_pending_age.set(max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0)
