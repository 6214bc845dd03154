"""Use case: a scheduler tick fires the schedule slots that are due."""

from __future__ import annotations

from datetime import datetime, timedelta

from millrace_common.language.workflow import LEGACY_SCHEDULE_NAME

from millrace_trigger.adapters.store import CursorMove, DueSchedule
from millrace_trigger.domain.firings import Firing, Outcome
from millrace_trigger.domain.schedule import plan_slots, schedule_firings, slot_schedule
from millrace_trigger.metrics import TriggerMetrics
from millrace_trigger.service_layer.firings import ConsumerShell


class Scheduler:
    """Fires schedule slots. Each slot is claimed by its idempotency key in the transaction that moves
    its schedule's cursor past it, so it fires once across restarts and instances; instances share due
    workflows with ``skip locked``."""

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
        # The most workflows one tick handles: a tick that handled this many may have left some due.
        self.batch = batch

    async def tick(self) -> int:
        """Handle the workflows with a schedule due now; returns how many."""
        shell = self._shell
        async with shell.transaction() as connection:
            now = shell.clock.now()
            due = await shell.store.due_schedules(connection, now, self.batch)
            planned = [(workflow, self._plan(workflow, now)) for workflow in due]
            firings = [firing for _, (_, found) in planned for firing in found]
            settled = await shell.ledger.settle(connection, firings, now)
            started = {item.idempotency_key for item in settled.recorded if item.outcome is Outcome.STARTED}
            for workflow, (moves, found) in planned:
                counted = [_with_runs(move, found, started) for move in moves]
                await shell.store.move_cursors(connection, workflow, counted, now)
        for item in settled.recorded:
            if item.outcome is Outcome.STARTED:
                slot = datetime.fromisoformat(str(item.data["schedule"]["slot"]))  # type: ignore[index]
                self._metrics.schedule_lag.observe(max(0.0, (now - slot).total_seconds()))
        await shell.publish(settled, "schedule")
        return len(due)

    def _plan(self, workflow: DueSchedule, now: datetime) -> tuple[list[CursorMove], list[Firing]]:
        candidate = workflow.candidate
        if candidate is None or not candidate.config.schedule_list():
            cursor = max(workflow.cursor(LEGACY_SCHEDULE_NAME), now)
            return [CursorMove(LEGACY_SCHEDULE_NAME, cursor, None, None, 0)], []
        moves: list[CursorMove] = []
        firings: list[Firing] = []
        for schedule in candidate.config.schedule_list():
            since = workflow.cursor(schedule.name)
            plan = plan_slots(slot_schedule(schedule), cursor=since, now=now, grace=self._grace)
            found = schedule_firings(candidate, plan, now=now, schedule=schedule)
            firings.extend(found)
            last = plan.on_time[-1] if plan.on_time else plan.latest_missed
            # A clock that went back never moves a cursor back: a slot is never handled twice.
            moves.append(CursorMove(schedule.name, max(since, now), plan.next_slot, last, 0))
        return moves, firings


def _with_runs(move: CursorMove, firings: list[Firing], started: set[str]) -> CursorMove:
    runs = sum(
        1
        for firing in firings
        if firing.idempotency_key in started and firing.data["schedule"]["name"] == move.name  # type: ignore[index]
    )
    return CursorMove(move.name, move.cursor, move.next_slot, move.last_slot, runs)
