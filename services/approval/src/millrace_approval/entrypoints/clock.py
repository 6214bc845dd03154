"""The approval service's loop driven by the clock: deadlines passed are escalated, and the pending
gauge refreshed on every tenth pass."""

from __future__ import annotations

import asyncio

from millrace_approval.service_layer.approvals import Approvals


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
