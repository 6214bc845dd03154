"""Which run events go to ``runs.approvals``: requests and decisions always, the four endings that close
pending approvals only for runs whose workflow has an approval node, nothing else ever."""

from __future__ import annotations

import typing

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.messages.run_events import (
    APPROVAL_CLOSINGS,
    AnyApprovalsEvent,
    AnyRunEvent,
    ApprovalDecided,
    ApprovalRequested,
    concerns_approvals,
)

pytestmark = pytest.mark.unit

EVENT_MODELS = typing.get_args(typing.get_args(AnyRunEvent)[0])
APPROVALS_MODELS = set(typing.get_args(typing.get_args(AnyApprovalsEvent)[0]))


def example(model: type) -> object:
    """An instance without validation: only its type matters here."""
    return model.model_construct()


@given(st.sampled_from(EVENT_MODELS), st.booleans())
def test_only_what_the_approval_service_acts_on_is_routed_to_it(model, run_has_approvals):
    routed = concerns_approvals(example(model), run_has_approvals)
    if model in (ApprovalRequested, ApprovalDecided):
        assert routed
    elif model in APPROVAL_CLOSINGS:
        assert routed is run_has_approvals
    else:
        assert not routed


def test_the_topic_carries_exactly_the_types_that_can_be_routed_to_it():
    routable = {m for m in EVENT_MODELS if concerns_approvals(example(m), True)}
    assert routable == APPROVALS_MODELS
