"""Use case: a scheduler tick fires the cron slots that are due."""

from __future__ import annotations

from datetime import datetime, timedelta

from millrace_trigger.domain.firings import Firing, Outcome
from millrace_trigger.domain.schedule import CronSchedule, plan_slots, schedule_firings
from millrace_trigger.metrics import TriggerMetrics
from millrace_trigger.service_layer.firings import ConsumerShell


class Scheduler:
    """Fires cron slots. Each slot is claimed by its idempotency key in the transaction that moves the
    schedule's cursor past it, so it fires once across restarts and instances; instances share due
    schedules with ``skip locked``."""

    def __init__(
        self,
        shell: ConsumerShell,
        metrics: TriggerMetrics,
        *,
        grace: timedelta,
        batch: int = 200,
    ) -> None:
        self._shell = shell
        self._metrics = metrics
        self._grace = grace
        # The most schedules one tick handles: a tick that handled this many may have left some due.
        self.batch = batch

    async def tick(self) -> int:
        """Handle the schedules that are due now; returns how many."""
        shell = self._shell
        async with shell.engine.begin() as connection:
            now = shell.clock.now()
            due = await shell.store.due_schedules(connection, now, self.batch)
            firings: list[Firing] = []
            for schedule in due:
                # A clock that went back never moves a cursor back: a slot is never handled twice.
                cursor = max(schedule.cursor, now)
                candidate = schedule.candidate
                if candidate is None or candidate.config.cron is None:
                    await shell.store.move_cursor(
                        connection, schedule, cursor=cursor, next_slot=None, now=now
                    )
                    continue
                cron = CronSchedule(candidate.config.cron, candidate.config.timezone)
                plan = plan_slots(cron, cursor=schedule.cursor, now=now, grace=self._grace)
                firings.extend(schedule_firings(candidate, plan, now=now))
                await shell.store.move_cursor(
                    connection, schedule, cursor=cursor, next_slot=plan.next_slot, now=now
                )
            settled = await shell.ledger.settle(connection, firings, now)
        for item in settled.recorded:
            if item.outcome is Outcome.STARTED:
                slot = datetime.fromisoformat(str(item.data["schedule"]["slot"]))  # type: ignore[index]
                self._metrics.schedule_lag.observe(max(0.0, (now - slot).total_seconds()))
        await shell.publish(settled, "schedule")
        return len(due)
