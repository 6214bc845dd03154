"""Bulk retry and cancel: the first call counts the runs a selection matches and answers a token bound
to (tenant, action, selection, count); the second, with the token, acts on the runs only if the
selection still matches that many, each run through the single-run command (its own transaction and
state check), and reports what it did per run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import runs
from millrace_gateway.domain.bulk import (
    DONE,
    BulkAction,
    BulkTokens,
    Confirmation,
    Outcome,
    RunSelection,
    refuse_over_limit,
)
from millrace_gateway.domain.refusals import NotFound, StaleSelection, WrongState
from millrace_gateway.service_layer.runs import Runs


@dataclass(frozen=True)
class Counted:
    count: int
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class RunOutcome:
    run_id: UUID
    outcome: Outcome
    reason: str | None = None


class BulkRuns:
    def __init__(
        self,
        engine: AsyncEngine,
        runs: Runs,
        tokens: BulkTokens,
        *,
        max_runs: int,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._runs = runs
        self._tokens = tokens
        self._max_runs = max_runs
        self._clock = clock

    async def count(self, tenant_id: str, action: BulkAction, selection: RunSelection) -> Counted:
        """How many of the tenant's runs the selection matches, and the token that confirms it."""
        async with self._engine.connect() as connection:
            count = await runs.count_selected(connection, tenant_id, selection)
        refuse_over_limit(count, self._max_runs)
        token, expires_at = self._tokens.issue(
            Confirmation(tenant_id, action, selection, count), self._clock()
        )
        return Counted(count, token, expires_at)

    async def operate(
        self, tenant_id: str, action: BulkAction, token: str, *, requested_by: str
    ) -> list[RunOutcome]:
        """Act on the runs the token's selection matches, if still as many as it confirmed."""
        confirmed = self._tokens.verify(token, tenant_id=tenant_id, action=action, now=self._clock())
        async with self._engine.connect() as connection:
            run_ids = await runs.selected_ids(
                connection, tenant_id, confirmed.selection, limit=self._max_runs + 1
            )
        if len(run_ids) != confirmed.count:
            raise StaleSelection(
                f"the filter matches {len(run_ids)} runs now, not the {confirmed.count} the token "
                "confirmed: ask for the count again",
                len(run_ids),
            )
        act = self._runs.retry if action == "retry" else self._runs.cancel
        outcomes: list[RunOutcome] = []
        for run_id in run_ids:
            try:
                await act(tenant_id, run_id, requested_by=requested_by)
            except (WrongState, NotFound) as refused:
                outcomes.append(RunOutcome(run_id, "skipped", refused.detail))
            else:
                outcomes.append(RunOutcome(run_id, DONE[action]))
        return outcomes
