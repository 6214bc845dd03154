"""The shell writes a batch of decisions' projections folded into a few statements. Whatever the batch
boundaries, the query tables must end as if every event had been applied on its own, in order."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_commands import CancelRun, RetryRun
from millrace_common.contracts.messages.run_events import RunEvent
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.projection import IN_FLIGHT, ProjectionWrites, project

from tests.unit.run_simulation import Simulation, fail_with, succeed_with

pytestmark = pytest.mark.unit

Tables = dict[str, dict]


def empty() -> Tables:
    return {"runs": {}, "nodes": {}, "timers": {}}


def apply(tables: Tables, writes: ProjectionWrites) -> None:
    """What the shell's statements do, in the shell's order, on plain dicts (SQL semantics: an update
    or delete of a missing row does nothing, an insert of an existing key is an error)."""
    timers = tables["timers"]
    for timer_id in writes.fired_timers:
        timers.pop(timer_id, None)
    for timer_id, row in list(timers.items()):
        if row["run_id"] in writes.finished_run_timers:
            del timers[timer_id]
    settled = {(t.run_id, t.node_id, t.attempt) for t in writes.settled_attempt_timers}
    for timer_id, row in list(timers.items()):
        if row["purpose"] == "node_timeout" and (row["run_id"], row["node_id"], row["attempt"]) in settled:
            del timers[timer_id]
    explicit, untouched = writes.older_node_changes()
    changed = set()
    for key, status in explicit.items():
        if key in tables["nodes"]:
            tables["nodes"][key]["status"] = status
            changed.add(key)
    for (run_id, node_id), row in tables["nodes"].items():
        if run_id in untouched and node_id not in untouched[run_id] and row["status"] in IN_FLIGHT:
            assert (run_id, node_id) not in changed, "a node row changed twice in one statement"
            row["status"] = "abandoned"
            changed.add((run_id, node_id))
    assert not changed & writes.node_rows.keys(), "a node row both updated and upserted in one statement"
    for run_id, values in writes.run_updates.items():
        if run_id in tables["runs"]:
            tables["runs"][run_id].update(values)
    for run_id, row in writes.new_runs.items():
        assert run_id not in tables["runs"], "a run inserted twice"
        tables["runs"][run_id] = dict(row)
    for key, values in writes.node_rows.items():
        tables["nodes"].setdefault(key, {}).update(values)
    for timer_id, row in writes.new_timers.items():
        assert timer_id not in timers, "a timer inserted twice"
        timers[timer_id] = dict(row)


def one_by_one(events: Sequence[RunEvent]) -> Tables:
    tables = empty()
    for event in events:
        apply(tables, project([event]))
    return tables


def in_batches(events: Sequence[RunEvent], cuts: Sequence[int]) -> Tables:
    tables = empty()
    bounds = [0, *sorted(c for c in set(cuts) if 0 < c < len(events)), len(events)]
    for start, end in itertools.pairwise(bounds):
        apply(tables, project(events[start:end]))
    return tables


def retrying_workflow() -> WorkflowDefinition:
    def node(node_id: str, node_type: str, **data: object) -> dict:
        return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}

    return WorkflowDefinition.model_validate(
        {
            "nodes": [
                node("start", "trigger", kind="manual"),
                node("call", "http_request", url="http://example.test/x", timeout_seconds=5),
                node("wait", "wait_delay", duration_seconds=2),
                node("done", "end"),
            ],
            "edges": [
                {"id": "a", "source": "start", "target": "call"},
                {"id": "b", "source": "call", "target": "wait"},
                {"id": "c", "source": "wait", "target": "done"},
            ],
            "settings": {"retry_count": 2},
        }
    )


@st.composite
def timer_heavy_dags(draw: st.DrawFn) -> WorkflowDefinition:
    """Random DAGs of the nodes whose projections interact most: runner nodes with retries (retry
    and node-timeout timers), delays, conditions and joins."""
    count = draw(st.integers(min_value=1, max_value=10))
    nodes = [{"id": "n0", "type": "trigger", "data": {"name": "start", "kind": "manual"}}]
    for index in range(1, count + 1):
        kind = draw(st.sampled_from(["http_request", "wait_delay", "condition", "set", "approval"]))
        data: dict = {"name": f"n{index}"}
        if kind == "http_request":
            on_error = draw(st.sampled_from(["fail_run", "error_edge"]))
            data.update(url=f"http://example.test/{index}", timeout_seconds=5, on_error=on_error)
        elif kind == "wait_delay":
            data["duration_seconds"] = draw(st.integers(1, 30))
        elif kind == "approval":
            # Nobody decides in the simulation: the deadline's timer takes the `timeout` handle.
            data.update(assignee={"role": "ops"}, title="ok?", deadline_seconds=draw(st.integers(1, 60)))
        elif kind == "condition":
            data["condition"] = {
                "field": "trigger.x",
                "operator": "greater_than",
                "value": draw(st.integers(0, 10)),
            }
        else:
            data["variables"] = {f"v{index}": index}
        nodes.append({"id": f"n{index}", "type": kind, "data": data})
    edges = []
    for target in range(1, count + 1):
        for source in sorted(draw(st.sets(st.integers(0, target - 1), min_size=1, max_size=min(2, target)))):
            handle = None
            if nodes[source]["type"] == "condition":
                handle = draw(st.sampled_from(["true", "false"]))
            elif nodes[source]["type"] == "approval":
                handle = draw(st.sampled_from(["approved", "rejected", "timeout"]))
            elif nodes[source]["data"].get("on_error") == "error_edge":
                handle = draw(st.sampled_from([None, "error"]))
            edges.append(
                {
                    "id": f"e{source}-{target}",
                    "source": f"n{source}",
                    "target": f"n{target}",
                    "sourceHandle": handle,
                }
            )
    settings = {"retry_count": draw(st.integers(0, 2)), "max_executions_per_hour": 1000}
    return WorkflowDefinition.model_validate({"nodes": nodes, "edges": edges, "settings": settings})


@given(
    definition=timer_heavy_dags(),
    x=st.integers(0, 10),
    failures=st.lists(st.booleans(), max_size=12),
    cancel_after=st.one_of(st.none(), st.integers(0, 20)),
    cuts=st.lists(st.integers(0, 200), max_size=8),
    upto=st.integers(1, 200),
)
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_batched_projections_equal_event_by_event_ones_for_any_batch_boundaries(
    definition, x, failures, cancel_after, cuts, upto
):
    answers = iter(failures)

    def runner(command):
        if next(answers, False):
            return fail_with(NodeError(type="http_status", message="503", retryable=True))(command)
        return succeed_with()(command)

    sim = Simulation(definition, runner=runner).start({"x": x})
    if cancel_after is not None:
        for _ in range(cancel_after):
            if sim.commands:
                sim.send(runner(sim.commands.pop(0)))
        sim.send(CancelRun(tenant_id="acme", run_id=sim.run_id, reason="stop"))
    # A prefix too: a finished run's end clears its timers, which would hide a timer left behind.
    log = sim.run_to_end().log[:upto]

    assert in_batches(log, cuts) == one_by_one(log)
    assert in_batches(log, []) == one_by_one(log)


def test_retries_timers_and_a_retried_run_fold_to_the_same_rows_in_one_batch():
    attempts = iter([False, False, False, True, True, True])

    def flaky(command):
        if next(attempts):
            return succeed_with()(command)
        return fail_with(NodeError(type="http_status", message="503", retryable=True))(command)

    sim = Simulation(retrying_workflow(), runner=flaky).start().run_to_end()
    assert sim.state.status.value == "failed"
    sim.send(RetryRun(tenant_id="acme", run_id=sim.run_id))
    sim.run_to_end()
    assert sim.state.status.value == "completed"
    log = sim.log
    assert {"node.retry_scheduled", "timer.fired", "run.retried", "run.failed"} <= {e.type for e in log}

    run_timeouts = [e for e in log if e.type == "timer.scheduled" and e.purpose == "run_timeout"]
    retried_at = next(e.seq for e in log if e.type == "run.retried")
    assert [e.seq > retried_at for e in run_timeouts] == [False, True], "the retried run has a timeout again"

    batched = in_batches(log, [])
    assert batched == one_by_one(log)
    assert batched["timers"] == {}, "every timer of a finished run is gone"
    (run,) = batched["runs"].values()
    assert run["status"] == "completed" and run["error"] is None and run["finished_at"] is not None
    # three attempts before the run failed, a fourth after the retry: attempt numbers keep counting
    assert batched["nodes"][(sim.run_id, "call")]["attempts"] == 4
    assert batched["nodes"][(sim.run_id, "call")]["status"] == "succeeded"


def test_a_cancelled_run_leaves_no_timers_even_when_they_were_scheduled_in_the_same_batch():
    sim = Simulation(retrying_workflow()).start()
    sim.send(CancelRun(tenant_id="acme", run_id=sim.run_id, reason="stop"))
    writes = project(sim.log)
    assert writes.new_timers == {}
    tables = empty()
    apply(tables, writes)
    assert tables["runs"][sim.run_id]["status"] == "cancelled"
    assert tables["nodes"][(sim.run_id, "call")]["status"] == "abandoned", (
        "the in-flight node is not left scheduled"
    )
    assert copy.deepcopy(tables) == one_by_one(sim.log)


def test_an_approval_requested_in_one_batch_and_decided_in_the_next_changes_its_row_once_per_statement():
    def node(node_id: str, node_type: str, **data: object) -> dict:
        return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}

    definition = WorkflowDefinition.model_validate(
        {
            "nodes": [
                node("start", "trigger", kind="manual"),
                node("ask", "approval", assignee={"role": "ops"}, title="ok?", deadline_seconds=30),
                node("done", "end"),
            ],
            "edges": [
                {"id": "a", "source": "start", "target": "ask"},
                {"id": "b", "source": "ask", "target": "done", "sourceHandle": "timeout"},
            ],
        }
    )
    log = Simulation(definition).start().run_to_end().log
    requested = next(i for i, e in enumerate(log) if e.type == "approval.requested")

    for cut in range(1, len(log)):
        assert in_batches(log, [cut]) == one_by_one(log), f"cut before event {cut}"
    assert in_batches(log, [requested])["nodes"][(log[0].run_id, "ask")]["status"] == "succeeded"


def test_a_run_starts_when_the_trigger_received_its_request_not_when_the_orchestrator_got_to_it():
    from datetime import UTC, datetime, timedelta
    from uuid import uuid4

    from millrace_common.contracts.messages.run_commands import TriggerData
    from millrace_common.contracts.messages.run_events import RunStarted

    received = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
    started = RunStarted(
        tenant_id="acme",
        run_id=uuid4(),
        seq=1,
        occurred_at=received + timedelta(milliseconds=80),
        workflow_id=uuid4(),
        workflow_version=1,
        trigger=TriggerData(kind="webhook"),
        received_at=received,
    )
    assert project([started]).new_runs[started.run_id]["started_at"] == received
    older = started.model_copy(update={"received_at": None})  # logged before the field existed
    assert project([older]).new_runs[started.run_id]["started_at"] == started.occurred_at
