"""The bulk operation's confirmation token: it carries the selection and count back unchanged, and is
refused when forged, expired, another tenant's or issued for the other action."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_gateway.domain.bulk import BulkTokens, Confirmation, RunSelection, refuse_over_limit
from millrace_gateway.domain.refusals import InvalidBulkToken, TooManyRuns

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TOKENS = BulkTokens("k" * 48, ttl=timedelta(minutes=5))

instants = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
filters = st.builds(
    RunSelection,
    workflow_id=st.none() | st.uuids(),
    status=st.none() | st.sampled_from(["running", "failed", "paused"]),
    started_after=st.none() | instants,
    started_before=st.none() | instants,
)
id_lists = st.builds(RunSelection, run_ids=st.lists(st.uuids(), max_size=20).map(tuple))


@given(
    selection=filters | id_lists, count=st.integers(0, 10_000), action=st.sampled_from(["retry", "cancel"])
)
def test_a_token_gives_back_the_selection_and_count_it_was_issued_for(selection, count, action):
    token, expires_at = TOKENS.issue(Confirmation("acme", action, selection, count), NOW)
    assert expires_at == NOW + timedelta(minutes=5)
    assert TOKENS.verify(token, tenant_id="acme", action=action, now=NOW) == Confirmation(
        "acme", action, selection, count
    )


def issued() -> str:
    selection = RunSelection(workflow_id=UUID(int=7), status="failed")
    return TOKENS.issue(Confirmation("acme", "retry", selection, 3), NOW)[0]


@pytest.mark.parametrize(
    ("token", "tenant", "action", "now", "reason"),
    [
        (issued(), "acme", "retry", NOW + timedelta(minutes=5), "expired"),
        (issued(), "other", "retry", NOW, "not one this API issued"),
        (issued(), "acme", "cancel", NOW, "issued for 'retry'"),
        (issued()[:-2] + "xx", "acme", "retry", NOW, "not one this API issued"),
        (
            BulkTokens("z" * 48, ttl=timedelta(minutes=5)).issue(
                Confirmation("acme", "retry", RunSelection(), 1), NOW
            )[0],
            "acme",
            "retry",
            NOW,
            "not one",
        ),
    ],
    ids=["expired", "another tenant", "another action", "forged", "another key"],
)
def test_a_token_is_refused_when_it_does_not_confirm_this_call(token, tenant, action, now, reason):
    with pytest.raises(InvalidBulkToken, match=reason) as refused:
        TOKENS.verify(token, tenant_id=tenant, action=action, now=now)
    assert refused.value.problems[0].pointer == "/body/token"


def test_a_selection_over_the_limit_is_refused_with_its_count():
    refuse_over_limit(5, 5)
    with pytest.raises(TooManyRuns, match="6 runs match"):
        refuse_over_limit(6, 5)
