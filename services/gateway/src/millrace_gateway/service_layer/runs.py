"""Run use cases: the tenant's runs and one run with its node log (as the orchestrator projects them),
and the commands a caller may send a run (cancel, retry), stored in the outbox in the transaction that
checks the run's state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Literal
from uuid import UUID

from millrace_common.contracts.messages.run_commands import CancelRun, ContinueRun, RetryRun
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters import runs
from millrace_gateway.adapters.outbox import Outbox
from millrace_gateway.adapters.pages import Page
from millrace_gateway.domain import cursors
from millrace_gateway.domain.refusals import NotFound
from millrace_gateway.domain.runs import CANCELLABLE, CONTINUABLE, RETRYABLE, refuse_unless


class Runs:
    def __init__(self, engine: AsyncEngine, outbox: Outbox) -> None:
        self._engine = engine
        self._outbox = outbox

    async def page(
        self,
        tenant_id: str,
        *,
        workflow_id: UUID | None,
        status: str | None,
        started_after: datetime | None,
        started_before: datetime | None,
        limit: int,
        offset: int,
        trigger_kind: str | None = None,
        text: str | None = None,
        record_id: UUID | None = None,
        cursor: str | None = None,
    ) -> Page:
        """The tenant's runs, newest first; from ``cursor`` (a page's ``next_cursor``) when given."""
        after = cursors.decode(cursor) if cursor is not None else None
        async with self._engine.connect() as connection:
            return await runs.runs_page(
                connection,
                tenant_id,
                workflow_id=workflow_id,
                status=status,
                started_after=started_after,
                started_before=started_before,
                limit=limit,
                offset=offset,
                trigger_kind=trigger_kind,
                text=text,
                record_id=record_id,
                after=after,
            )

    async def get(self, tenant_id: str, run_id: UUID) -> tuple[Row, Sequence[Row]]:
        """The run, and its node executions in the order they were scheduled."""
        async with self._engine.connect() as connection:
            run = await _run(connection, tenant_id, run_id)
            return run, await runs.nodes(connection, run_id)

    async def export(self, tenant_id: str, run_id: UUID) -> AsyncIterator[bytes]:
        """The run's whole event log as JSON Lines, page by page in seq order (each line the event as
        it was published); NotFound, before anything is sent, for a run the tenant does not have."""
        async with self._engine.connect() as connection:
            await _run(connection, tenant_id, run_id)
        return self._event_lines(tenant_id, run_id)

    async def _event_lines(self, tenant_id: str, run_id: UUID) -> AsyncIterator[bytes]:
        after = 0
        while True:
            async with self._engine.connect() as connection:
                page = await runs.history(connection, tenant_id, run_id, after=after)
            yield b"".join(event.data + b"\n" for event in page)
            if len(page) < runs.HISTORY_PAGE:
                return
            after = page[-1].seq

    async def cancel(self, tenant_id: str, run_id: UUID, *, requested_by: str) -> None:
        """Ask the orchestrator to cancel a running run; results that arrive later are ignored."""
        command = CancelRun(
            tenant_id=tenant_id, correlation_id=run_id, run_id=run_id, requested_by=requested_by
        )
        await self._send(tenant_id, run_id, command, allowed=CANCELLABLE)

    async def retry(self, tenant_id: str, run_id: UUID, *, requested_by: str) -> None:
        """Run a failed run again from its failed nodes; the outputs of nodes that succeeded are kept."""
        command = RetryRun(
            tenant_id=tenant_id, correlation_id=run_id, run_id=run_id, requested_by=requested_by
        )
        await self._send(tenant_id, run_id, command, allowed=RETRYABLE)

    async def continue_paused(
        self, tenant_id: str, run_id: UUID, action: Literal["retry", "skip"], *, requested_by: str
    ) -> None:
        """Let a run paused on a node's error go on: the node runs again (retry) or is passed over (skip)."""
        command = ContinueRun(
            tenant_id=tenant_id,
            correlation_id=run_id,
            run_id=run_id,
            action=action,
            requested_by=requested_by,
        )
        await self._send(tenant_id, run_id, command, allowed=CONTINUABLE)

    async def _send(
        self,
        tenant_id: str,
        run_id: UUID,
        command: CancelRun | RetryRun | ContinueRun,
        *,
        allowed: frozenset[str],
    ) -> None:
        async with self._engine.begin() as connection:
            run = await _run(connection, tenant_id, run_id)
            refuse_unless(run.status, allowed)
            await self._outbox.add(connection, Outgoing(RUNS_COMMANDS, str(run_id), command))
        self._outbox.wake()


async def _run(connection: AsyncConnection, tenant_id: str, run_id: UUID) -> Row:
    row = await runs.run(connection, tenant_id, run_id)
    if row is None:
        raise NotFound("run")
    return row
