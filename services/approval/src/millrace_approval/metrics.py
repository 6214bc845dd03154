"""The approval service's own Prometheus metrics, on the registry its bootstrap creates: decisions and
time to decision, counted where they happen (``ApprovalMetrics``, by the use cases), and gauges read
from the database: what waits, and what waits past its deadline (``ApprovalGauges``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.human_tables import approvals
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_approval.domain.approvals import Status


class ApprovalMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            "millrace_approvals_pending", "Approvals waiting for a decision", registry=registry
        )
        self.time_to_decision = Histogram(
            "millrace_approval_time_to_decision_seconds",
            "From request to the decision that completed the outcome",
            buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 7 * 24 * 3600),
            registry=registry,
        )
        self.decisions = Counter(
            "millrace_approval_decisions_total",
            "Approvals closed, by outcome",
            ["outcome"],
            registry=registry,
        )


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
