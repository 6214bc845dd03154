"""Notification decisions: what a task or an approval notification becomes per channel and recipient,
the chat payload, and what an attempt does to a notification (delivered, failing with its next time
after a growing wait, given up after the last attempt)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_node_runner.domain.notifications import (
    CHAT_RECIPIENT,
    Channel,
    ChannelSettings,
    Retry,
    Source,
    Status,
    after_attempt,
    chat_payload,
    plan,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)


def source(**changes) -> Source:
    values = {
        "kind": "task",
        "source_id": "7",
        "tenant_id": "acme",
        "reason": "task",
        "title": "Pack order A-17",
        "message": "Before noon",
        "assignee_user": "ada@acme.test",
        "assignee_role": None,
        "link": "https://millrace.test/runs/r1",
    }
    return Source(**(values | changes))


def test_a_task_becomes_one_email_per_address_and_one_chat_message():
    planned = plan(
        source(assignee_user=None, assignee_role="ops"),
        ChannelSettings(email_enabled=True, chat_enabled=True),
        ["Bo@acme.test", "ada@acme.test", "bo@acme.test"],
    )

    assert [(p.channel, p.recipient, p.status) for p in planned] == [
        (Channel.EMAIL, "ada@acme.test", Status.PENDING),
        (Channel.EMAIL, "bo@acme.test", Status.PENDING),
        (Channel.CHAT, CHAT_RECIPIENT, Status.PENDING),
    ]
    assert planned[0].subject == "New task: Pack order A-17"
    assert planned[0].body.splitlines() == [
        "New task: Pack order A-17",
        "Assigned to: role ops",
        "",
        "Before noon",
        "",
        "Open it: https://millrace.test/runs/r1",
    ]


def test_an_assignee_named_by_id_is_shown_by_address_and_approvals_say_why():
    planned = plan(
        source(kind="approval", reason="escalated", assignee_user="0b1c", title="Ship?"),
        ChannelSettings(email_enabled=False, chat_enabled=True),
        ["boss@acme.test"],
    )

    assert [p.channel for p in planned] == [Channel.CHAT]
    assert planned[0].subject == "Approval escalated: Ship?"
    assert "Assigned to: boss@acme.test" in planned[0].body


def test_an_assignee_without_an_address_is_recorded_as_given_up_with_the_reason():
    planned = plan(source(assignee_user="gone@acme.test"), ChannelSettings(True, False), [])

    assert len(planned) == 1
    assert planned[0].status is Status.GIVEN_UP and planned[0].recipient == "gone@acme.test"
    assert planned[0].last_error == ("no email address for gone@acme.test: no such active user in the tenant")


def test_the_chat_payload_is_slack_compatible_json():
    assert json.loads(chat_payload("New task: x\nAssigned to: a")) == {"text": "New task: x\nAssigned to: a"}


RETRY = Retry(base_seconds=30, max_seconds=3600, max_attempts=8)


def test_a_delivered_attempt_ends_the_notification():
    settled = after_attempt(3, None, RETRY, NOW)

    assert settled.status is Status.DELIVERED and settled.delivered_at == NOW
    assert settled.next_attempt_at is None and settled.last_error is None


def test_a_failed_attempt_waits_longer_each_time_and_the_last_gives_up():
    first, second = after_attempt(1, "refused", RETRY, NOW), after_attempt(2, "refused", RETRY, NOW)
    last = after_attempt(8, "refused", RETRY, NOW)

    assert first.status is Status.FAILING and first.next_attempt_at == NOW + timedelta(seconds=30)
    assert second.next_attempt_at == NOW + timedelta(seconds=60) and second.last_error == "refused"
    assert last.status is Status.GIVEN_UP and last.next_attempt_at is None and last.last_error == "refused"


@given(
    attempts=st.integers(min_value=1, max_value=10_000),
    base=st.floats(min_value=0.01, max_value=3600),
    ceiling=st.floats(min_value=0.01, max_value=86_400),
)
def test_the_wait_grows_never_shrinks_and_never_passes_its_ceiling(
    attempts: int, base: float, ceiling: float
):
    retry = Retry(base, ceiling, max_attempts=10_001)
    wait, following = retry.wait(attempts), retry.wait(attempts + 1)

    assert timedelta(0) < wait <= following
    assert wait <= timedelta(seconds=ceiling)


@given(attempts=st.integers(min_value=1, max_value=50), max_attempts=st.integers(min_value=1, max_value=50))
def test_a_failure_gives_up_exactly_at_the_last_attempt(attempts: int, max_attempts: int):
    settled = after_attempt(attempts, "x" * 5000, Retry(1, 10, max_attempts), NOW)

    assert (settled.status is Status.GIVEN_UP) == (attempts >= max_attempts)
    assert settled.delivered_at is None and len(settled.last_error or "") == 2000
