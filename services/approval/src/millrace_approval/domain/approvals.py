"""Approval rules, pure: who may decide, what a decision does to the outcome, who may reassign."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from millrace_common.platform.permissions import Permission, Role, allows
from millrace_common.platform.refusals import Refused
from pydantic import BaseModel, ConfigDict, JsonValue, model_validator

Decision = Literal["approved", "rejected"]


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    TIMEOUT = "timeout"
    CLOSED = "closed"


class Assignee(BaseModel):
    """Exactly one of a user (id or email) or a role."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user: str | None = None
    role: str | None = None

    @model_validator(mode="after")
    def _user_or_role(self) -> Assignee:
        if (self.user is None) == (self.role is None):
            raise ValueError('an assignee is {"user": ...} or {"role": ...}')
        return self


@dataclass(frozen=True)
class Actor:
    """Who acts: a user id (or API key id), the user's email when known, and roles."""

    subject: str
    roles: frozenset[Role]
    email: str | None = None


@dataclass(frozen=True)
class Vote:
    decided_by: str
    decision: Decision


@dataclass(frozen=True)
class Approval:
    status: Status
    assignee: Assignee
    quorum: int
    allow_self_approval: bool
    requested_by: str | None
    data_hash: str
    votes: tuple[Vote, ...] = ()


class ApprovalRefused(Refused):
    """A rule refused the action; ``status`` and ``code`` are what the API answers."""


class NotAnAssignee(ApprovalRefused):
    status = 403
    code = "not_assignee"


class SelfApproval(ApprovalRefused):
    status = 403
    code = "self_approval"


class AlreadyVoted(ApprovalRefused):
    code = "already_decided"


class NotPending(ApprovalRefused):
    code = "not_pending"


class StaleSnapshot(ApprovalRefused):
    code = "stale_snapshot"


def snapshot_hash(data: JsonValue) -> str:
    """SHA-256 of the canonical JSON of the snapshot: sorted keys, no spaces, UTF-8."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def is_assignee(approval: Approval, actor: Actor) -> bool:
    if approval.assignee.user is not None:
        return approval.assignee.user in {actor.subject, actor.email}
    return approval.assignee.role in {role.value for role in actor.roles}


def outcome_after(approval: Approval, vote: Vote) -> Status:
    """One rejection rejects; ``quorum`` approvals approve; anything less stays pending."""
    if vote.decision == "rejected":
        return Status.REJECTED
    approvals = sum(1 for v in approval.votes if v.decision == "approved") + 1
    return Status.APPROVED if approvals >= approval.quorum else Status.PENDING


def decide(approval: Approval, actor: Actor, decision: Decision, seen_hash: str) -> Status:
    """The outcome after ``actor``'s vote, or the rule that refuses it."""
    if approval.status is not Status.PENDING:
        raise NotPending(f"this approval is already {approval.status.value}")
    if not allows(actor.roles, Permission.APPROVE) or not is_assignee(approval, actor):
        raise NotAnAssignee("only the assignees of this approval may decide it")
    if (
        not approval.allow_self_approval
        and approval.requested_by is not None
        and approval.requested_by
        in {
            actor.subject,
            actor.email,
        }
    ):
        raise SelfApproval("the user who started the run may not approve it")
    if any(v.decided_by == actor.subject for v in approval.votes):
        raise AlreadyVoted("you have already decided this approval")
    if seen_hash != approval.data_hash:
        raise StaleSnapshot("the data changed since you saw it; reload and decide again")
    return outcome_after(approval, Vote(actor.subject, decision))


def check_reassign(approval: Approval, actor: Actor) -> None:
    """The current assignee (or a role member) may hand over; so may an admin."""
    if approval.status is not Status.PENDING:
        raise NotPending(f"this approval is already {approval.status.value}")
    if Role.ADMIN in actor.roles:
        return
    if not is_assignee(approval, actor):
        raise NotAnAssignee("only the assignee or an admin may reassign this approval")
