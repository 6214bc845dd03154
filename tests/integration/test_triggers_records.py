"""Record triggers against a real trigger service, Kafka and PostgreSQL: each record kind, field
changes with old and new values, filters, duplicate delivery, two instances, causation depth and dead
letters (the hourly limit is the orchestrator's: test_hourly_limit.py). The StartRun commands are read
back from ``runs.commands``."""

from __future__ import annotations

import time

import httpx
import pytest
from millrace_common.contracts.messages.records import RecordCreated, RecordDeleted, RecordUpdated
from millrace_common.contracts.messages.webhooks import run_id_for_key

from tests.integration.test_triggers_fixtures import Rig, rig_fixture, trigger_system_fixture  # noqa: F401 - fixtures
from tests.support.processes import System

pytestmark = pytest.mark.integration


def test_created_updated_and_deleted_records_start_the_workflows_of_their_kind(rig: Rig):
    created = rig.active_workflow({"kind": "record_created", "pipeline_ids": ["leads"]})
    updated = rig.active_workflow({"kind": "record_updated", "pipeline_ids": ["leads"]})
    deleted = rig.active_workflow({"kind": "record_deleted"})
    elsewhere = rig.active_workflow({"kind": "record_created", "pipeline_ids": ["invoices"]})
    events = [
        RecordCreated(
            tenant_id=rig.tenant, pipeline_id="leads", record_id="l-1", data={"email": "ada@example.com"}
        ),
        RecordUpdated(
            tenant_id=rig.tenant,
            pipeline_id="leads",
            record_id="l-1",
            data={"email": "ada@b.c"},
            old_data={"email": "ada@example.com"},
        ),
        RecordDeleted(
            tenant_id=rig.tenant, pipeline_id="leads", record_id="l-1", old_data={"email": "ada@b.c"}
        ),
    ]
    rig.produce(*events)

    [on_create] = rig.wait_for_runs(created, 1)
    assert on_create.trigger.kind == "record_created"
    assert on_create.trigger.data["record"]["data"] == {"email": "ada@example.com"}
    assert on_create.idempotency_key == f"{events[0].message_id}:{created}"
    assert on_create.run_id == run_id_for_key(on_create.idempotency_key)
    [on_update] = rig.wait_for_runs(updated, 1)
    assert on_update.trigger.data["record"]["old_data"] == {"email": "ada@example.com"}
    assert on_update.trigger.data["changed_fields"] == ["email"]
    [on_delete] = rig.wait_for_runs(deleted, 1)
    assert on_delete.trigger.data["record"]["old_data"] == {"email": "ada@b.c"}
    assert rig.start_runs(elsewhere) == []


def test_records_changed_through_the_api_start_runs(rig: Rig):
    workflow = rig.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    assert rig.api.post("/api/v1/pipelines", json={"id": "deals", "name": "Deals"}).status_code == 201
    record = rig.api.post("/api/v1/pipelines/deals/records", json={"data": {"amount": 5}})
    assert record.status_code == 201
    [run] = rig.wait_for_runs(workflow, 1)
    assert run.trigger.data["record"]["id"] == record.json()["id"]


def test_field_changed_carries_old_and_new_values_derived_from_the_last_state_seen(rig: Rig):
    won = rig.active_workflow(
        {
            "kind": "field_changed",
            "pipeline_ids": ["deals"],
            "fields": [{"field": "status"}, {"field": "owner"}],
            "conditions": {
                "and": [
                    {"field": "trigger.changes.status.old", "operator": "equals", "value": "open"},
                    {"field": "trigger.changes.status.new", "operator": "equals", "value": "won"},
                ]
            },
        }
    )
    any_owner_change = rig.active_workflow(
        {"kind": "field_changed", "pipeline_ids": ["deals"], "fields": [{"field": "owner", "from": [None]}]}
    )

    def change(data: dict) -> RecordUpdated:  # an outside producer sending only the new record
        return RecordUpdated(tenant_id=rig.tenant, pipeline_id="deals", record_id="deal-9", data=data)

    rig.produce(
        RecordCreated(
            tenant_id=rig.tenant,
            pipeline_id="deals",
            record_id="deal-9",
            data={"status": "open", "amount": 1},
        ),
        change({"status": "open", "amount": 2}),
        change({"status": "won", "amount": 2, "owner": "ada"}),
        change({"status": "lost", "amount": 2, "owner": "bob"}),
    )

    [run] = rig.wait_for_runs(won, 1)
    assert run.trigger.kind == "field_changed"
    assert run.trigger.data["changes"] == {
        "status": {"old": "open", "new": "won"},
        "owner": {"old": None, "new": "ada"},
    }
    assert run.trigger.data["record"]["old_data"] == {"status": "open", "amount": 2}
    assert run.trigger.data["record"]["data"] == {"status": "won", "amount": 2, "owner": "ada"}
    [first_owner] = rig.wait_for_runs(any_owner_change, 1)
    assert first_owner.trigger.data["changes"] == {"owner": {"old": None, "new": "ada"}}
    remembered = rig.sql("select data from record_states where record_id = 'deal-9'")
    assert remembered == [{"data": {"status": "lost", "amount": 2, "owner": "bob"}}]


def test_field_changed_without_an_earlier_state_is_recorded_not_guessed(rig: Rig):
    workflow = rig.active_workflow({"kind": "field_changed", "fields": [{"field": "status"}]})
    rig.produce(
        RecordUpdated(tenant_id=rig.tenant, pipeline_id="p", record_id="unknown", data={"status": "won"})
    )
    rig.wait_for_runs(workflow, 0)
    [firing] = rig.firings(workflow)
    assert firing["status"] == "no_baseline"
    assert "earlier state is unknown" in firing["reason"]


def test_pipeline_ids_and_conditions_filter_the_events(rig: Rig):
    big_ones = rig.active_workflow(
        {
            "kind": "record_created",
            "pipeline_ids": ["north", "south"],
            "conditions": {"field": "trigger.record.data.amount", "operator": "greater_than", "value": 100},
        }
    )

    def created(pipeline: str, amount: int) -> RecordCreated:
        return RecordCreated(
            tenant_id=rig.tenant,
            pipeline_id=pipeline,
            record_id=f"{pipeline}-{amount}",
            data={"amount": amount},
        )

    rig.produce(created("north", 500), created("south", 50), created("east", 900), created("south", 101))
    runs = rig.wait_for_runs(big_ones, 2)
    assert sorted(r.trigger.data["record"]["id"] for r in runs) == ["north-500", "south-101"]


def test_another_tenants_events_never_start_a_workflow(rig: Rig):
    workflow = rig.active_workflow({"kind": "record_created"})
    rig.produce(RecordCreated(tenant_id=f"{rig.tenant}-other", pipeline_id="p", record_id="r", data={}))
    assert rig.wait_for_runs(workflow, 0) == []


def test_a_record_event_delivered_twice_starts_one_run(rig: Rig):
    workflow = rig.active_workflow({"kind": "record_created"})
    event = RecordCreated(tenant_id=rig.tenant, pipeline_id="p", record_id="twice", data={"n": 1})
    rig.produce(event)
    rig.wait_for_runs(workflow, 1)
    rig.produce(event, event)
    [run] = rig.wait_for_runs(workflow, 1)
    assert run.idempotency_key == f"{event.message_id}:{workflow}"
    assert len(rig.firings(workflow)) == 1


def test_a_change_made_too_deep_in_a_chain_of_runs_starts_no_run(rig: Rig):
    workflow = rig.active_workflow({"kind": "record_updated"})
    deep = RecordUpdated(
        tenant_id=rig.tenant,
        pipeline_id="p",
        record_id="loop",
        data={"n": 6},
        old_data={"n": 5},
        causation_depth=5,
    )
    allowed = RecordUpdated(
        tenant_id=rig.tenant,
        pipeline_id="p",
        record_id="loop",
        data={"n": 5},
        old_data={"n": 4},
        causation_depth=4,
    )
    rig.produce(allowed, deep)
    [run] = rig.wait_for_runs(workflow, 1)
    assert run.trigger.causation_depth == 4, "the run's record changes will carry depth 5"
    refused = [f for f in rig.firings(workflow) if f["status"] == "too_deep"]
    assert len(refused) == 1
    assert "causation depth limit of 5" in refused[0]["reason"]


def test_paused_and_archived_workflows_stop_matching(rig: Rig):
    workflow = rig.active_workflow({"kind": "record_created"})
    assert rig.api.post(f"/api/v1/workflows/{workflow}/pause").status_code == 200
    rig.produce(RecordCreated(tenant_id=rig.tenant, pipeline_id="p", record_id="while-paused", data={}))
    assert rig.wait_for_runs(workflow, 0) == []
    assert rig.api.post(f"/api/v1/workflows/{workflow}/activate", json={}).status_code == 200
    rig.produce(RecordCreated(tenant_id=rig.tenant, pipeline_id="p", record_id="active-again", data={}))
    [run] = rig.wait_for_runs(workflow, 1)
    assert run.trigger.data["record"]["id"] == "active-again"
    assert rig.api.post(f"/api/v1/workflows/{workflow}/archive").status_code == 200
    rig.produce(RecordCreated(tenant_id=rig.tenant, pipeline_id="p", record_id="archived", data={}))
    assert len(rig.wait_for_runs(workflow, 1)) == 1
    assert rig.sql("select * from active_triggers where workflow_id = cast(:w as uuid)", w=workflow) == []


def test_a_record_event_that_fails_validation_is_dead_lettered_with_the_reason(rig: Rig):
    workflow = rig.active_workflow({"kind": "record_created"})
    rig.produce(
        (b"bad-1", b"{not json"),
        (b"bad-2", b'{"type": "record.created", "tenant_id": "' + rig.tenant.encode() + b'", "data": []}'),
        RecordCreated(tenant_id=rig.tenant, pipeline_id="p", record_id="good", data={}),
    )
    rig.wait_for_runs(workflow, 1)
    letters = [letter for letter in rig.dead_letters() if letter.key in ("bad-1", "bad-2")]
    assert sorted(letter.key for letter in letters) == ["bad-1", "bad-2"]
    by_key = {letter.key: letter for letter in letters}
    assert "json" in by_key["bad-1"].reason.lower()
    assert "pipeline_id" in by_key["bad-2"].reason and "data" in by_key["bad-2"].reason
    assert by_key["bad-2"].raw_value.startswith('{"type": "record.created"')


def test_two_trigger_instances_sharing_the_events_ask_for_each_run_once(rig: Rig):
    """Each event's firing is recorded once and its run asked for once, whichever instance handled it
    (how many of those runs may start in an hour is the orchestrator's to judge:
    tests/integration/test_hourly_limit.py)."""
    workflow = rig.active_workflow({"kind": "record_created"}, max_per_hour=10)
    second = System(rig.system.infra, rig.system.namespace)
    try:
        second.start(("trigger",))
        handled_by_both = False
        sent = 0
        for _ in range(20):
            batch = [
                RecordCreated(
                    tenant_id=rig.tenant,
                    pipeline_id="p",
                    record_id=f"spread-{sent + i}",
                    data={"i": sent + i},
                )
                for i in range(12)
            ]
            sent += len(batch)
            rig.produce(*batch)
            rig.wait_until_settled()
            counts = [handled_records(url) for url in (rig.system.url("trigger"), second.url("trigger"))]
            if all(counts):
                handled_by_both = True
                break
            time.sleep(0.5)
        assert handled_by_both, "the second instance never got partitions of records.events"
        runs = rig.wait_for_runs(workflow, sent)
        firings = rig.firings(workflow)
        assert len(firings) == sent
        assert sum(f["status"] == "started" for f in firings) == len(runs) == sent
        assert {str(f["run_id"]) for f in firings} == {str(r.run_id) for r in runs}
    finally:
        assert second.stop_all() == {"trigger": 0}


def handled_records(trigger_url: str) -> float:
    body = httpx.get(f"{trigger_url}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("millrace_messages_handled_total{") and 'topic="records.events"' in line
    )
