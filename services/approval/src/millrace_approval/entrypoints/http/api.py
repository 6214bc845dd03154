"""The approvals API under ``/api/v1/approvals``: my pending list, one approval with its data and
history, decide, reassign, and the audit trail. Tenant-scoped; another tenant's approval is 404."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from fastapi import APIRouter
from millrace_common.platform.auth import Principal
from millrace_common.platform.problems import declared
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy import Row

from millrace_approval.domain.approvals import Assignee
from millrace_approval.entrypoints.http.deps import ApprovalsDep, Reader
from millrace_approval.service_layer.approvals import ApprovalView

router = APIRouter(prefix="/api/v1/approvals", tags=["approvals"])


class ApprovalSummary(BaseModel):
    id: UUID
    run_id: UUID
    node_id: str
    workflow_id: UUID
    title: str
    status: str
    assignee: Assignee
    quorum: int
    requested_at: datetime
    due_at: datetime | None
    escalated_at: datetime | None


class DecisionOut(BaseModel):
    decided_by: str
    decision: str
    note: str
    decided_at: datetime


class AuditEntry(BaseModel):
    actor: str | None
    action: str
    detail: JsonValue
    at: datetime


class ApprovalOut(ApprovalSummary):
    description: str
    data: JsonValue
    snapshot_hash: str
    requested_by: str | None
    allow_self_approval: bool
    on_deadline: str
    escalate_to: JsonValue
    closed_at: datetime | None
    decisions: list[DecisionOut]
    history: list[AuditEntry]


class DecisionBody(BaseModel):
    decision: Literal["approved", "rejected"]
    note: str = Field(default="", max_length=5000)
    snapshot_hash: str = Field(
        min_length=64, max_length=64, description="The hash of the data the approver saw"
    )


class DecisionResult(BaseModel):
    id: UUID
    status: str


class ReassignBody(BaseModel):
    assignee: Assignee
    note: str = Field(default="", max_length=5000)


def summary(row: Row) -> ApprovalSummary:
    return ApprovalSummary(
        id=row.id,
        run_id=row.run_id,
        node_id=row.node_id,
        workflow_id=row.workflow_id,
        title=row.title,
        status=row.status,
        assignee=Assignee(user=row.assignee_user, role=row.assignee_role),
        quorum=row.quorum,
        requested_at=row.requested_at,
        due_at=row.due_at,
        escalated_at=row.escalated_at,
    )


def detail(view: ApprovalView) -> ApprovalOut:
    row = view.row
    return ApprovalOut(
        **summary(row).model_dump(),
        description=row.description,
        data=row.data,
        snapshot_hash=row.data_hash,
        requested_by=row.requested_by,
        allow_self_approval=row.allow_self_approval,
        on_deadline=row.on_deadline,
        escalate_to=row.escalate_to,
        closed_at=row.closed_at,
        decisions=[
            DecisionOut(decided_by=v.decided_by, decision=v.decision, note=v.note, decided_at=v.decided_at)
            for v in view.votes
        ],
        history=[AuditEntry(actor=h.actor, action=h.action, detail=h.detail, at=h.at) for h in view.history],
    )


async def _actor(approvals: ApprovalsDep, principal: Principal):
    return await approvals.actor(principal.tenant_id, str(principal.subject), principal.roles)


@router.get("", response_model=list[ApprovalSummary])
async def my_pending(
    reader: Reader, approvals: ApprovalsDep, run_id: UUID | None = None
) -> list[ApprovalSummary]:
    """Pending approvals assigned to the caller or to one of the caller's roles, oldest first; with
    ``run_id``, every approval of that run in the caller's tenant, whatever its status."""
    if run_id is not None:
        return [summary(row) for row in await approvals.of_run(reader.tenant_id, run_id)]
    actor = await _actor(approvals, reader)
    return [summary(row) for row in await approvals.pending(reader.tenant_id, actor)]


@router.get("/{approval_id}", response_model=ApprovalOut)
async def one_approval(approval_id: UUID, reader: Reader, approvals: ApprovalsDep) -> ApprovalOut:
    return detail(await approvals.view(reader.tenant_id, approval_id))


@router.get("/{approval_id}/audit", response_model=list[AuditEntry])
async def audit_trail(approval_id: UUID, reader: Reader, approvals: ApprovalsDep) -> list[AuditEntry]:
    """Every action on the approval, with who and when."""
    return detail(await approvals.view(reader.tenant_id, approval_id)).history


@router.post(
    "/{approval_id}/decision",
    response_model=DecisionResult,
    responses=declared(
        conflict="the outcome is already complete (not_pending), the caller already decided "
        "(already_decided), or the data changed since it was shown (stale_snapshot)"
    ),
)
async def decide(
    approval_id: UUID, body: DecisionBody, reader: Reader, approvals: ApprovalsDep
) -> DecisionResult:
    """Approve or reject the data whose hash is ``snapshot_hash``; 409 when the outcome is already
    complete, the caller already decided, or the hash is stale; 403 for non-assignees and self-approval."""
    actor = await _actor(approvals, reader)
    status = await approvals.decide(
        reader.tenant_id, approval_id, actor, body.decision, body.note, body.snapshot_hash
    )
    return DecisionResult(id=approval_id, status=status.value)


@router.post(
    "/{approval_id}/reassign",
    response_model=ApprovalOut,
    responses=declared(conflict="the approval is no longer pending (not_pending)"),
)
async def reassign(
    approval_id: UUID, body: ReassignBody, reader: Reader, approvals: ApprovalsDep
) -> ApprovalOut:
    """Hand the approval to another user or role (delegation); by the assignee or an admin."""
    actor = await _actor(approvals, reader)
    await approvals.reassign(reader.tenant_id, approval_id, actor, body.assignee, body.note)
    return detail(await approvals.view(reader.tenant_id, approval_id))
