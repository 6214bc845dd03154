"""Use case: prune the run log. For each sweep the rules give (a tenant with a setting of its own, then
every other tenant), take a batch of the oldest finished runs, keep those the domain says may go,
export them first when the tenant asks, delete them, pause, and go on until a batch comes back short.
Then forget processed-message claims older than the redelivery horizon."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from millrace_orchestrator.adapters.retention import RunLogRetention
from millrace_orchestrator.adapters.run_export import ExportFolder
from millrace_orchestrator.domain.retention import RetentionRules, Sweep, select_prunable

log = logging.getLogger(__name__)


@dataclass
class Pruned:
    runs: int = 0
    exported_files: int = 0
    processed_messages: int = 0
    skipped_sweeps: int = 0


class RunRetention:
    def __init__(
        self,
        store: RunLogRetention,
        clock: Callable[[], datetime],
        *,
        default_keep: timedelta,
        processed_keep: timedelta,
        export: ExportFolder | None,
        batch_runs: int = 50,
        batch_claims: int = 1000,
        pause_seconds: float = 0.05,
    ) -> None:
        self._store = store
        self._clock = clock
        self._default_keep = default_keep
        self._processed_keep = processed_keep
        self._export = export
        self._batch_runs = batch_runs
        self._batch_claims = batch_claims
        self._pause = pause_seconds

    async def prune(self) -> Pruned:
        """One pass; what it removed."""
        now = self._clock()
        rules = await self._store.rules(default_keep=self._default_keep, shortest_keep=self._processed_keep)
        pruned = Pruned()
        for sweep in rules.sweeps(now):
            if sweep.export_first and self._export is None:
                log.warning(
                    "runs kept: the tenant asks for an export before pruning and no export folder is set"
                    " (MILLRACE_RETENTION_EXPORT_DIR)",
                    extra={"tenant_id": sweep.tenant_id},
                )
                pruned.skipped_sweeps += 1
                continue
            await self._sweep(sweep, rules, now, pruned)
        while True:
            removed = await self._store.prune_processed(now - self._processed_keep, limit=self._batch_claims)
            pruned.processed_messages += removed
            if removed < self._batch_claims:
                break
            await asyncio.sleep(self._pause)
        if pruned.runs or pruned.processed_messages:
            log.info(
                "pruned the run log",
                extra={"ids": {"runs": pruned.runs, "processed_messages": pruned.processed_messages}},
            )
        return pruned

    async def _sweep(self, sweep: Sweep, rules: RetentionRules, now: datetime, pruned: Pruned) -> None:
        while True:
            found = await self._store.candidates(sweep, limit=self._batch_runs)
            chosen = select_prunable(found, rules, now)
            if chosen and sweep.export_first and self._export is not None:
                lines = await self._store.event_lines(chosen)
                await self._export.write(chosen[0].tenant_id, chosen[0].run_id, now, lines)
                pruned.exported_files += 1
            deleted = await self._store.delete(chosen)
            pruned.runs += len(deleted)
            if len(found) < self._batch_runs or not deleted:
                return
            await asyncio.sleep(self._pause)
