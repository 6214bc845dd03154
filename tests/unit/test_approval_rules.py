"""The approval rules, pure: who decides, quorum, self-approval, stale snapshots, reassignment."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_approval.domain.approvals import (
    Actor,
    AlreadyVoted,
    Approval,
    Assignee,
    NotAnAssignee,
    NotPending,
    SelfApproval,
    StaleSnapshot,
    Status,
    Vote,
    check_reassign,
    decide,
    snapshot_hash,
)
from millrace_common.platform.permissions import Role

pytestmark = pytest.mark.unit

HASH = snapshot_hash({"order": "A-17"})
ALICE = Actor("alice-id", frozenset({Role.APPROVER}), "alice@x.test")
BOB = Actor("bob-id", frozenset({Role.APPROVER}))


def approval(**changes) -> Approval:
    base = {
        "status": Status.PENDING,
        "assignee": Assignee(role="approver"),
        "quorum": 1,
        "allow_self_approval": False,
        "requested_by": None,
        "data_hash": HASH,
    }
    return Approval(**{**base, **changes})


def test_the_hash_is_of_canonical_json_so_key_order_does_not_matter():
    assert snapshot_hash({"b": 1, "a": [1, "é"]}) == snapshot_hash({"a": [1, "é"], "b": 1})
    assert snapshot_hash({"a": 1}) != snapshot_hash({"a": 2})


def test_a_role_member_approves_and_one_rejection_rejects():
    assert decide(approval(), ALICE, "approved", HASH) is Status.APPROVED
    assert decide(approval(quorum=3), ALICE, "rejected", HASH) is Status.REJECTED


def test_a_quorum_waits_for_enough_approvals():
    first = approval(quorum=2)
    assert decide(first, ALICE, "approved", HASH) is Status.PENDING
    assert (
        decide(approval(quorum=2, votes=(Vote("alice-id", "approved"),)), BOB, "approved", HASH)
        is Status.APPROVED
    )


def test_a_user_assignee_matches_by_id_or_email_and_nobody_else_decides():
    assert (
        decide(approval(assignee=Assignee(user="alice@x.test")), ALICE, "approved", HASH) is Status.APPROVED
    )
    assert decide(approval(assignee=Assignee(user="alice-id")), ALICE, "approved", HASH) is Status.APPROVED
    with pytest.raises(NotAnAssignee):
        decide(approval(assignee=Assignee(user="alice-id")), BOB, "approved", HASH)
    with pytest.raises(NotAnAssignee):
        decide(approval(), Actor("v", frozenset({Role.VIEWER})), "approved", HASH)


def test_the_starter_may_not_approve_unless_the_node_allows_it():
    with pytest.raises(SelfApproval):
        decide(approval(requested_by="alice-id"), ALICE, "approved", HASH)
    assert (
        decide(approval(requested_by="alice-id", allow_self_approval=True), ALICE, "approved", HASH)
        is Status.APPROVED
    )


def test_one_vote_per_approver_stale_hashes_and_closed_approvals_are_refused():
    with pytest.raises(AlreadyVoted):
        decide(approval(quorum=2, votes=(Vote("alice-id", "approved"),)), ALICE, "approved", HASH)
    with pytest.raises(StaleSnapshot):
        decide(approval(), ALICE, "approved", "0" * 64)
    for status in (Status.APPROVED, Status.TIMEOUT, Status.CLOSED):
        with pytest.raises(NotPending):
            decide(approval(status=status), ALICE, "approved", HASH)


def test_the_assignee_or_an_admin_reassigns():
    check_reassign(approval(), ALICE)
    check_reassign(approval(assignee=Assignee(user="someone")), Actor("root", frozenset({Role.ADMIN})))
    with pytest.raises(NotAnAssignee):
        check_reassign(approval(assignee=Assignee(user="someone")), BOB)


@given(st.integers(min_value=1, max_value=10), st.integers(min_value=0, max_value=10))
def test_approval_completes_exactly_when_the_quorum_is_reached(quorum: int, earlier: int):
    votes = tuple(Vote(f"u{i}", "approved") for i in range(earlier))
    status = Status.APPROVED if earlier + 1 >= quorum else Status.PENDING
    assert decide(approval(quorum=quorum, votes=votes), BOB, "approved", HASH) is status
