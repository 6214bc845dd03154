"""Which runs a record event goes to, and the ``run_event_waits`` rows a batch of run events writes:
a wait for a record adds its row, the node settling or the run ending removes it, and a row the same
batch adds and settles is never written (one statement may not change a row twice)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest
from millrace_common.contracts.messages.records import RecordDeleted, RecordUpdated
from millrace_common.contracts.messages.run_commands import DeliverRecordEvent
from millrace_common.contracts.messages.run_events import (
    NodeScheduled,
    NodeSucceeded,
    RecordWaitRegistered,
    RunCancelled,
)
from millrace_orchestrator.adapters.run_log_waits import record_wait_writes
from millrace_trigger.domain.waits import record_event_deliveries

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def scheduled(run_id, node_id="wait", record_id="r-1") -> NodeScheduled:
    return NodeScheduled(
        tenant_id="acme",
        run_id=run_id,
        node_id=node_id,
        node_type="wait_for_event",
        attempt=1,
        input={"event": "record", "pipeline_id": "orders", "record_id": record_id},
    )


def settled(run_id, node_id="wait") -> NodeSucceeded:
    return NodeSucceeded(
        tenant_id="acme",
        run_id=run_id,
        node_id=node_id,
        node_type="wait_for_event",
        attempt=1,
        output={},
        duration_ms=0,
    )


def statements(events, may_wait=lambda _: True):
    return record_wait_writes(events, may_wait, NOW)


def test_a_wait_for_a_record_adds_its_row():
    run_id = uuid4()
    [upsert] = statements([scheduled(run_id)])
    assert (
        upsert.sql.startswith("insert into run_event_waits") and "on conflict (run_id, node_id)" in upsert.sql
    )
    [row] = json.loads(upsert.params["wait_rows"])
    assert (row["node_id"], row["pipeline_id"], row["record_id"]) == ("wait", "orders", "r-1")


def test_a_row_added_and_settled_in_one_batch_is_never_written():
    run_id = uuid4()
    [delete] = statements([scheduled(run_id), settled(run_id)])
    assert delete.sql.startswith("delete from run_event_waits")
    assert json.loads(delete.params["wait_deletes"]) == [{"run_id": str(run_id), "node_id": "wait"}]


def test_a_run_ending_removes_its_rows_and_its_pending_ones():
    run_id = uuid4()
    registered = RecordWaitRegistered(
        tenant_id="acme", run_id=run_id, node_id="w2", pipeline_id="o", record_id="x"
    )
    [delete] = statements(
        [registered, scheduled(run_id), RunCancelled(tenant_id="acme", run_id=run_id, reason="r")]
    )
    assert json.loads(delete.params["wait_ended"]) == [str(run_id)]
    assert json.loads(delete.params["wait_deletes"]) == []


def test_runs_that_cannot_wait_for_records_write_nothing_when_they_end():
    run_id = uuid4()
    assert statements([RunCancelled(tenant_id="acme", run_id=run_id, reason="r")], lambda _: False) == []


def test_a_record_event_goes_to_each_node_waiting_for_its_record_and_no_other():
    run_a, run_b = str(uuid4()), str(uuid4())
    update = RecordUpdated(tenant_id="acme", pipeline_id="orders", record_id="r-1", data={"status": "paid"})
    delete = RecordDeleted(tenant_id="acme", pipeline_id="orders", record_id="r-2", old_data={"x": 1})
    elsewhere = RecordUpdated(tenant_id="other", pipeline_id="orders", record_id="r-1", data={})
    waiting = [
        (("acme", "orders", "r-1"), run_a, "wait"),
        (("acme", "orders", "r-1"), run_b, "loop_wait[2]"),
        (("acme", "orders", "r-2"), run_a, "gone"),
    ]
    sent = record_event_deliveries([update, delete, elsewhere], waiting)
    commands = [o.message for o in sent]
    assert all(isinstance(c, DeliverRecordEvent) for c in commands)
    assert [(str(c.run_id), c.node_id, c.event_type) for c in commands] == [
        (run_a, "wait", "record.updated"),
        (run_b, "loop_wait[2]", "record.updated"),
        (run_a, "gone", "record.deleted"),
    ]
    assert commands[0].data == {"status": "paid"} and commands[2].data is None
    assert commands[2].old_data == {"x": 1}
    assert [o.key for o in sent] == [run_a, run_b, run_a]
