"""What an accepted webhook call starts (the gateway decides it, with the trigger's conditions): the run
it names, its outcome and the StartRun, as the run will see it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.messages.webhooks import run_id_for_key, webhook_idempotency_key
from millrace_common.language.workflow import TriggerConfig
from millrace_gateway.domain.webhooks import CallOutcome, WebhookCall, WebhookTarget, decide_call

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def target(**config: object) -> WebhookTarget:
    parsed = TriggerConfig.model_validate({"name": "Hook", "kind": "webhook", **config})
    return WebhookTarget(uuid.uuid4(), "acme", 3, parsed)


def call(body: object, delivery_id: str = "d-1") -> WebhookCall:
    return WebhookCall(
        delivery_id=delivery_id,
        content_type="json",
        body=body,
        headers={"x-shop": "north"},
        query={"tag": ["a", "b"]},
        signature_verified=True,
    )


def test_a_call_starts_its_workflow_version_with_the_call_as_trigger_data():
    hook = target()
    decision = decide_call(hook, call({"order": 7}), now=NOW)
    assert decision.outcome is CallOutcome.STARTED and decision.reason is None
    start = decision.start
    assert start is not None
    key = webhook_idempotency_key(hook.workflow_id, "d-1")
    assert start.idempotency_key == key
    assert decision.run_id == start.run_id == run_id_for_key(key)
    assert (start.tenant_id, start.workflow_id, start.workflow_version) == ("acme", hook.workflow_id, 3)
    assert start.trigger.kind == "webhook"
    assert start.trigger.data == {
        "webhook": {
            "delivery_id": "d-1",
            "content_type": "json",
            "body": {"order": 7},
            "headers": {"x-shop": "north"},
            "query": {"tag": ["a", "b"]},
            "signature_verified": True,
            "received_at": NOW.isoformat(),
        }
    }


def test_conditions_that_do_not_hold_start_nothing_and_say_so():
    hook = target(conditions={"field": "trigger.webhook.body.kind", "operator": "equals", "value": "paid"})
    paid = decide_call(hook, call({"kind": "paid"}), now=NOW)
    refund = decide_call(hook, call({"kind": "refund"}, "d-2"), now=NOW)
    assert paid.outcome is CallOutcome.STARTED and paid.start is not None
    assert refund.outcome is CallOutcome.FILTERED and refund.start is None
    assert refund.reason == "the trigger's conditions do not hold for this call"


def test_conditions_see_the_workflow_and_the_trigger_kind():
    hook = target(conditions={"field": "trigger.kind", "operator": "equals", "value": "webhook"})
    assert decide_call(hook, call({}), now=NOW).outcome is CallOutcome.STARTED


def test_conditions_that_cannot_be_evaluated_start_nothing_and_keep_the_reason():
    hook = target(conditions={"field": "trigger.webhook.body.n", "operator": "greater_than", "value": 5})
    decision = decide_call(hook, call({"n": "many"}), now=NOW)
    assert decision.outcome is CallOutcome.CONDITION_ERROR and decision.start is None
    assert decision.reason is not None and "cannot be evaluated" in decision.reason


@given(st.text(alphabet="abcXYZ019._:@/+=-", min_size=1, max_size=40), st.text(max_size=20))
def test_the_run_id_depends_on_the_workflow_and_the_delivery_id_only(delivery_id, text):
    hook = target()
    first = decide_call(hook, call({"a": text}, delivery_id), now=NOW)
    again = decide_call(hook, call({"b": 1}, delivery_id), now=datetime(2027, 1, 1, tzinfo=UTC))
    other = decide_call(target(), call({"a": text}, delivery_id), now=NOW)
    assert first.run_id == again.run_id != other.run_id
