"""Run use cases: the tenant's runs and one run with its node log (as the orchestrator projects them),
and the commands a caller may send a run (cancel, retry), stored in the outbox in the transaction that
checks the run's state."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from uuid import UUID, uuid4

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.run_commands import (
    CancelRun,
    ContinueRun,
    RetryRun,
    SignalRun,
    StartRun,
    TriggerData,
)
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS
from pydantic import JsonValue
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_gateway.adapters import runs
from millrace_gateway.adapters.outbox import Outbox
from millrace_gateway.adapters.pages import Page
from millrace_gateway.domain import cursors
from millrace_gateway.domain.refusals import NotFound, UnknownVersion
from millrace_gateway.domain.runs import (
    CANCELLABLE,
    CONTINUABLE,
    RERUNNABLE,
    RETRYABLE,
    SIGNALLABLE,
    refuse_unless,
)
from millrace_gateway.domain.workflows import refuse_if_archived


@dataclass(frozen=True)
class RerunLinks:
    rerun_of: UUID | None
    reruns: list[UUID]


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
        parent_run_id: UUID | None = None,
        trigger_kind: str | None = None,
        text: str | None = None,
        record_id: UUID | None = None,
        cursor: str | None = None,
    ) -> Page:
        """The tenant's runs, newest first (``parent_run_id``: those a run's sub_workflow nodes started); from
        ``cursor`` (a page's ``next_cursor``) when given."""
        after = cursors.decode(cursor) if cursor is not None else None
        async with self._engine.connect() as connection:
            return await runs.runs_page(
                connection,
                tenant_id,
                parent_run_id=parent_run_id,
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

    async def get(self, tenant_id: str, run_id: UUID) -> tuple[Row, Sequence[Row], RerunLinks]:
        """The run, its node executions in the order they were scheduled, and its re-run links."""
        async with self._engine.connect() as connection:
            run = await _run(connection, tenant_id, run_id)
            links = RerunLinks(
                await runs.rerun_of(connection, tenant_id, run_id),
                await runs.reruns(connection, tenant_id, run_id),
            )
            return run, await runs.nodes(connection, run_id), links

    async def rerun(
        self,
        tenant_id: str,
        run_id: UUID,
        *,
        data: JsonObject | None,
        version: int | None,
        requested_by: str,
    ) -> tuple[UUID, int]:
        """Start a new run of the finished run's workflow (its version unless ``version``) from the
        run's trigger data, or ``data`` in its place; the new run names the original (``rerun_of``).
        Its id and version."""
        async with self._engine.begin() as connection:
            original = await _run(connection, tenant_id, run_id)
            refuse_unless(original.status, RERUNNABLE)
            version = version or original.workflow_version
            status, has_version = await runs.workflow_status(
                connection, tenant_id, original.workflow_id, version
            )
            if status is None:
                raise NotFound("workflow")
            refuse_if_archived(status, "run")
            if not has_version:
                raise UnknownVersion(version, pointer="/body/version", status=422)
            trigger = TriggerData.model_validate(original.trigger)
            new_run = uuid4()
            command = StartRun(
                tenant_id=tenant_id,
                correlation_id=new_run,
                run_id=new_run,
                workflow_id=original.workflow_id,
                workflow_version=version,
                trigger=trigger.model_copy(
                    update={"data": trigger.data if data is None else data, "started_by": requested_by}
                ),
                idempotency_key=f"rerun:{new_run}",
            )
            await runs.record_rerun(
                connection,
                tenant_id,
                new_run,
                rerun_of=run_id,
                requested_by=requested_by,
                requested_at=utc_now(),
            )
            await self._outbox.add(connection, Outgoing(RUNS_COMMANDS, str(new_run), command))
        self._outbox.wake()
        return new_run, version

    async def children(self, tenant_id: str, run_id: UUID) -> Sequence[Row]:
        """The runs the run's sub_workflow nodes started (the first ``MAX_CHILDREN_SHOWN``)."""
        async with self._engine.connect() as connection:
            return await runs.children(connection, tenant_id, run_id)

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

    async def signal(
        self, tenant_id: str, run_id: UUID, name: str, payload: JsonValue, *, sent_by: str
    ) -> None:
        """Send the run a signal; its waiting nodes take it (the run must not have finished)."""
        command = SignalRun(
            tenant_id=tenant_id,
            correlation_id=run_id,
            run_id=run_id,
            name=name,
            payload=payload,
            sent_by=sent_by,
        )
        await self._send(tenant_id, run_id, command, allowed=SIGNALLABLE)

    async def _send(
        self,
        tenant_id: str,
        run_id: UUID,
        command: CancelRun | RetryRun | ContinueRun | SignalRun,
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
