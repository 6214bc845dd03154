"""The approval service's use cases: each is one transaction that loads, asks the domain, and
writes the change, its audit entry and any outgoing ``ResumeRun`` together."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.messages.run_commands import ResumeRun
from millrace_common.contracts.messages.run_events import (
    APPROVAL_CLOSINGS,
    AnyRunEvent,
    ApprovalDecided,
    ApprovalRequested,
    RunEvent,
)
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS, Namespace
from millrace_common.platform.logs import bound
from millrace_common.platform.outbox import OutboxRelay, enqueue
from millrace_common.platform.refusals import Refused
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from millrace_approval.adapters import store
from millrace_approval.domain.approvals import (
    Actor,
    Assignee,
    Decision,
    Status,
    Vote,
    check_reassign,
    decide,
    snapshot_hash,
)
from millrace_approval.metrics import ApprovalMetrics
from millrace_approval.settings import PRODUCER

log = logging.getLogger(__name__)

CLOSING = APPROVAL_CLOSINGS
"""Run events that close a run's pending approvals."""


class ApprovalNotFound(Refused):
    """No such approval in the caller's tenant (another tenant's is answered the same way)."""

    status = 404
    code = "not_found"

    def __init__(self) -> None:
        super().__init__("approval not found")


@dataclass(frozen=True)
class ApprovalView:
    row: Row
    votes: list[Row]
    history: list[Row]


class Approvals:
    def __init__(
        self,
        engine: AsyncEngine,
        relay: OutboxRelay,
        namespace: Namespace,
        metrics: ApprovalMetrics,
        clock: Callable[[], datetime],
    ) -> None:
        self._engine = engine
        self._relay = relay
        self._namespace = namespace
        self._metrics = metrics
        self._clock = clock

    # --- from runs.events ---------------------------------------------------------------------

    async def on_run_event(self, event: AnyRunEvent) -> None:
        with bound(run_id=event.run_id, tenant_id=event.tenant_id, node_id=getattr(event, "node_id", None)):
            await self._on_run_event(event)

    async def _on_run_event(self, event: AnyRunEvent) -> None:
        now = self._clock()
        async with self._engine.begin() as connection:
            match event:
                case ApprovalRequested():
                    await self._record_request(connection, event, now)
                    log.info("approval requested")
                case ApprovalDecided():
                    for row in await store.close_pending(
                        connection, event.run_id, Status(event.decision), now, node_id=event.node_id
                    ):
                        await store.audit(
                            connection, row, event.decided_by, event.decision, {"note": event.note}, now
                        )
                        self._observe_outcome(row, event.decision, now)
                case RunEvent() if isinstance(event, CLOSING):
                    for row in await store.close_pending(connection, event.run_id, Status.CLOSED, now):
                        await store.audit(connection, row, None, "closed", {"reason": event.type}, now)
                        self._observe_outcome(row, "closed", now)

    async def _record_request(
        self, connection: AsyncConnection, event: ApprovalRequested, now: datetime
    ) -> None:
        assignee = await store.resolve_assignee(
            connection, event.tenant_id, Assignee.model_validate(event.assignee)
        )
        values = {
            "id": event.message_id,
            "tenant_id": event.tenant_id,
            "run_id": event.run_id,
            "node_id": event.node_id,
            "workflow_id": event.workflow_id,
            "title": event.title,
            "description": event.description,
            "data": event.data,
            "data_hash": snapshot_hash(event.data),
            "assignee_user": assignee.user,
            "assignee_role": assignee.role,
            "quorum": event.quorum,
            "allow_self_approval": event.allow_self_approval,
            "requested_by": event.requested_by,
            "on_deadline": event.on_deadline,
            "escalate_to": event.escalate_to,
            "due_at": event.deadline_at,
            "status": Status.PENDING.value,
            "requested_at": event.occurred_at,
        }
        if not await store.insert_request(connection, values):
            return
        row = await store.load(connection, event.tenant_id, event.message_id)
        assert row is not None
        detail = {"assignee": assignee.model_dump(exclude_none=True), "quorum": event.quorum}
        await store.audit(connection, row, event.requested_by, "requested", detail, now)
        await store.notify(connection, row, assignee, "requested", now)
        if (
            event.on_deadline == "escalate"
            and event.deadline_at is not None
            and event.escalate_to is not None
        ):
            await store.add_deadline(connection, row.id, row.tenant_id, event.deadline_at)

    # --- people -------------------------------------------------------------------------------

    async def actor(self, tenant_id: str, subject: str, roles: frozenset) -> Actor:
        async with self._engine.connect() as connection:
            return Actor(subject, roles, await store.user_email(connection, tenant_id, subject))

    async def pending(self, tenant_id: str, actor: Actor) -> list[Row]:
        async with self._engine.connect() as connection:
            return await store.pending_for(connection, tenant_id, actor)

    async def view(self, tenant_id: str, approval_id: UUID) -> ApprovalView:
        async with self._engine.connect() as connection:
            row = await store.load(connection, tenant_id, approval_id)
            if row is None:
                raise ApprovalNotFound
            return ApprovalView(
                row, await store.votes(connection, row.id), await store.history(connection, row.id)
            )

    async def decide(
        self, tenant_id: str, approval_id: UUID, actor: Actor, decision: Decision, note: str, seen_hash: str
    ) -> Status:
        """Record ``actor``'s vote; the vote that completes the outcome also resumes the run. The row
        lock serialises concurrent votes, so exactly one of them completes the outcome."""
        now = self._clock()
        async with self._engine.begin() as connection:
            row = await store.load(connection, tenant_id, approval_id, lock=True)
            if row is None:
                raise ApprovalNotFound
            approval = store.to_domain(row, await store.votes(connection, row.id))
            outcome = decide(approval, actor, decision, seen_hash)
            await store.add_vote(connection, row.id, Vote(actor.subject, decision), note, seen_hash, now)
            await store.audit(
                connection, row, actor.subject, decision, {"note": note, "snapshot_hash": seen_hash}, now
            )
            if outcome is not Status.PENDING:
                await store.set_status(connection, row.id, outcome, now)
                resume = ResumeRun(
                    tenant_id=tenant_id,
                    correlation_id=row.run_id,
                    run_id=row.run_id,
                    node_id=row.node_id,
                    decision=outcome.value,
                    decided_by=actor.subject,
                    note=note,
                )
                await enqueue(
                    connection, self._namespace, PRODUCER, [Outgoing(RUNS_COMMANDS, str(row.run_id), resume)]
                )
        if outcome is not Status.PENDING:
            self._observe_outcome(row, outcome.value, now)
            await self._relay.publish_pending()
        return outcome

    async def reassign(
        self, tenant_id: str, approval_id: UUID, actor: Actor, to: Assignee, note: str
    ) -> None:
        now = self._clock()
        async with self._engine.begin() as connection:
            row = await store.load(connection, tenant_id, approval_id, lock=True)
            if row is None:
                raise ApprovalNotFound
            check_reassign(store.to_domain(row, []), actor)
            target = await store.resolve_assignee(connection, tenant_id, to)
            await store.reassign(connection, row.id, target, None)
            detail = {
                "from": Assignee(user=row.assignee_user, role=row.assignee_role).model_dump(
                    exclude_none=True
                ),
                "to": target.model_dump(exclude_none=True),
                "note": note,
            }
            await store.audit(connection, row, actor.subject, "reassigned", detail, now)
            await store.notify(connection, row, target, "reassigned", now)

    # --- deadlines ----------------------------------------------------------------------------

    async def escalate_due(self) -> int:
        """Hand every approval whose deadline passed to its escalation target; returns how many."""
        now = self._clock()
        async with self._engine.begin() as connection:
            escalated = 0
            for due in await store.take_due_deadlines(connection, now):
                row = await store.load(connection, due.tenant_id, due.approval_id, lock=True)
                if row is None or row.status != Status.PENDING.value or row.escalate_to is None:
                    continue
                target = await store.resolve_assignee(
                    connection, row.tenant_id, Assignee.model_validate(row.escalate_to)
                )
                await store.reassign(connection, row.id, target, now)
                detail = {
                    "from": Assignee(user=row.assignee_user, role=row.assignee_role).model_dump(
                        exclude_none=True
                    ),
                    "to": target.model_dump(exclude_none=True),
                    "due_at": row.due_at.isoformat() if row.due_at else None,
                }
                await store.audit(connection, row, None, "escalated", detail, now)
                await store.notify(connection, row, target, "escalated", now)
                escalated += 1
            return escalated

    async def refresh_pending_gauge(self) -> None:
        async with self._engine.connect() as connection:
            self._metrics.pending.set(await store.count_pending(connection))

    def _observe_outcome(self, row: Row, outcome: str, now: datetime) -> None:
        ids = {
            "approval_id": row.id,
            "run_id": row.run_id,
            "tenant_id": row.tenant_id,
            "node_id": row.node_id,
        }
        log.info("approval closed", extra={"ids": {**ids, "outcome": outcome}})
        self._metrics.decisions.labels(outcome=outcome).inc()
        self._metrics.time_to_decision.observe(max(0.0, (now - row.requested_at).total_seconds()))

    async def workflow_names(self, tenant_id: str, ids: set[UUID]) -> dict[UUID, str]:
        async with self._engine.connect() as connection:
            return await store.workflow_names(connection, tenant_id, ids)

    async def user_for_sign_in(self, tenant_id: str, email: str) -> Row | None:
        async with self._engine.connect() as connection:
            return await store.user_for_sign_in(connection, tenant_id, email)

    async def of_run(self, tenant_id: str, run_id: UUID) -> list[Row]:
        async with self._engine.connect() as connection:
            return await store.of_run(connection, tenant_id, run_id)
