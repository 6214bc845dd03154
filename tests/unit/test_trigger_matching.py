"""Matching record events to candidate workflows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from millrace_common.contracts.messages.records import RecordCreated, RecordDeleted, RecordUpdated
from millrace_common.contracts.messages.webhooks import run_id_for_key, webhook_idempotency_key
from millrace_common.language.workflow import TriggerConfig
from millrace_trigger.domain.firings import Candidate, Outcome
from millrace_trigger.domain.matching import dedupe, match_record_event

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
TENANT = "acme"


def candidate(kind: str, **config: object) -> Candidate:
    parsed = TriggerConfig.model_validate({"name": "When", "kind": kind, **config})
    return Candidate(uuid.uuid4(), 3, TENANT, parsed)


def updated(data: dict, old: dict | None = None, *, depth: int = 0, pipeline: str = "deals") -> RecordUpdated:
    return RecordUpdated(
        tenant_id=TENANT,
        pipeline_id=pipeline,
        record_id="deal-1",
        data=data,
        old_data=old,
        causation_depth=depth,
    )


def match(event, candidates, *, last_seen=None, max_depth=5):
    return match_record_event(event, candidates, last_seen=last_seen, now=NOW, max_causation_depth=max_depth)


def test_a_created_record_starts_each_record_created_workflow_once():
    wanted, other = candidate("record_created"), candidate("record_deleted")
    event = RecordCreated(tenant_id=TENANT, pipeline_id="leads", record_id="l-1", data={"email": "a@b.c"})
    [fired] = match(event, [wanted, other, wanted])
    assert fired.outcome is Outcome.STARTED
    assert fired.workflow_id == wanted.workflow_id
    assert fired.idempotency_key == f"{event.message_id}:{wanted.workflow_id}"
    command = fired.start_run()
    assert command.run_id == run_id_for_key(fired.idempotency_key)
    assert command.workflow_version == 3
    assert command.causation_id == event.message_id
    assert command.trigger.kind == "record_created"
    assert command.trigger.data["record"] == {
        "id": "l-1",
        "pipeline_id": "leads",
        "data": {"email": "a@b.c"},
        "old_data": None,
    }
    assert command.trigger.causation_depth == 0


def test_deleted_records_carry_their_last_data():
    event = RecordDeleted(tenant_id=TENANT, pipeline_id="leads", record_id="l-1", old_data={"email": "x"})
    [fired] = match(event, [candidate("record_deleted")])
    assert fired.data["record"]["old_data"] == {"email": "x"}
    assert fired.data["record"]["data"] == {}


def test_pipeline_ids_filter_the_events():
    only_deals = candidate("record_updated", pipeline_ids=["deals"])
    assert match(updated({"a": 1}, {"a": 0}, pipeline="deals"), [only_deals])
    assert match(updated({"a": 1}, {"a": 0}, pipeline="leads"), [only_deals]) == []


def test_conditions_test_the_record_data():
    big = candidate(
        "record_updated",
        conditions={"field": "trigger.record.data.amount", "operator": "greater_than", "value": 100},
    )
    assert match(updated({"amount": 500}, {"amount": 1}), [big])
    assert match(updated({"amount": 50}, {"amount": 1}), [big]) == []


def test_a_condition_that_cannot_be_evaluated_is_recorded_not_dropped():
    broken = candidate(
        "record_updated",
        conditions={"field": "trigger.record.data.amount", "operator": "greater_than", "value": 100},
    )
    [fired] = match(updated({"amount": "lots"}, {}), [broken])
    assert fired.outcome is Outcome.CONDITION_ERROR
    assert "cannot compare" in fired.reason


def test_field_changed_carries_old_and_new_values_and_conditions_can_test_both():
    won = candidate(
        "field_changed",
        fields=[{"field": "status"}, {"field": "owner"}],
        conditions={
            "and": [
                {"field": "trigger.changes.status.old", "operator": "equals", "value": "open"},
                {"field": "trigger.changes.status.new", "operator": "equals", "value": "won"},
            ]
        },
    )
    [fired] = match(updated({"status": "won", "owner": "ada"}, {"status": "open", "owner": "ada"}), [won])
    assert fired.kind == "field_changed"
    assert fired.data["changes"] == {"status": {"old": "open", "new": "won"}}
    assert fired.data["changed_fields"] == ["status"]
    assert match(updated({"status": "won"}, {"status": "pending"}), [won]) == []


def test_field_changed_uses_from_and_to():
    to_won = candidate("field_changed", fields=[{"field": "status", "to": ["won"]}])
    assert match(updated({"status": "won"}, {"status": "open"}), [to_won])
    assert match(updated({"status": "lost"}, {"status": "open"}), [to_won]) == []


def test_field_changed_derives_the_old_state_from_the_last_one_seen():
    watcher = candidate("field_changed", fields=[{"field": "status"}])
    event = updated({"status": "won"})
    [fired] = match(event, [watcher], last_seen={"status": "open"})
    assert fired.data["changes"] == {"status": {"old": "open", "new": "won"}}
    assert fired.data["record"]["old_data"] == {"status": "open"}
    assert match(event, [watcher], last_seen={"status": "won"}) == []


def test_field_changed_without_any_earlier_state_is_recorded_as_no_baseline():
    [fired] = match(updated({"status": "won"}), [candidate("field_changed", fields=[{"field": "status"}])])
    assert fired.outcome is Outcome.NO_BASELINE


def test_old_data_sent_by_the_producer_wins_over_the_state_seen():
    watcher = candidate("field_changed", fields=[{"field": "status"}])
    [fired] = match(updated({"status": "won"}, {"status": "lost"}), [watcher], last_seen={"status": "open"})
    assert fired.data["changes"]["status"]["old"] == "lost"


def test_field_changed_does_not_fire_on_created_records():
    event = RecordCreated(tenant_id=TENANT, pipeline_id="deals", record_id="d", data={"status": "won"})
    assert match(event, [candidate("field_changed", fields=[{"field": "status"}])]) == []


def test_a_change_too_deep_in_a_chain_of_runs_starts_no_run():
    wanted = candidate("record_updated")
    [allowed] = match(updated({"a": 1}, {}, depth=4), [wanted], max_depth=5)
    assert allowed.outcome is Outcome.STARTED
    assert allowed.start_run().trigger.causation_depth == 4, "its own record changes will carry 5"
    [refused] = match(updated({"a": 1}, {}, depth=5), [wanted], max_depth=5)
    assert refused.outcome is Outcome.TOO_DEEP
    assert "depth limit of 5" in refused.reason


def test_the_same_event_names_the_same_runs():
    wanted = candidate("record_updated")
    event = updated({"a": 1}, {})
    assert [f.run_id for f in match(event, [wanted])] == [f.run_id for f in match(event, [wanted])]


def test_dedupe_keeps_the_first_firing_of_a_key():
    wanted = candidate("record_updated")
    event = updated({"a": 1}, {})
    firings = match(event, [wanted]) + match(event, [wanted])
    assert len(dedupe(firings)) == 1


def test_run_ids_depend_on_the_key_only():
    workflow = uuid.uuid4()
    assert run_id_for_key(webhook_idempotency_key(workflow, "x")) == run_id_for_key(f"webhook:x:{workflow}")
    assert run_id_for_key("a") != run_id_for_key("b")
