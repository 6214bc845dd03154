"""``wait_for_event`` and ``respond_to_webhook`` through the pure core: a signal resumes the node waiting
for it, a condition passes events over, the timeout takes the ``timeout`` handle, signals that come
early are kept only when the node asks for it (and only as long as it says), and a respond node answers
only a run a webhook started. Folding the log again always gives the same state (the run survives a
restart of its orchestrator because of that)."""

from __future__ import annotations

from datetime import timedelta
from unittest.mock import ANY
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.contracts.messages.run_commands import DeliverRecordEvent, SignalRun
from millrace_common.contracts.messages.run_events import (
    EventBuffered,
    RecordWaitRegistered,
    WebhookResponded,
)
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, evolve

from tests.unit.run_simulation import Simulation

pytestmark = pytest.mark.unit


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    found = {"id": f"{source}-{target}", "source": source, "target": target}
    if handle:
        found["sourceHandle"] = handle
    return found


def waiting_workflow(trigger_kind: str = "manual", **wait) -> WorkflowDefinition:
    wait = {"signal_name": "paid", "wait_seconds": 600, **wait}
    nodes = [
        node("start", "trigger", kind=trigger_kind),
        node("first", "set", variables={"step": 1}),
        node("wait", "wait_for_event", event="signal", **wait),
        node("done", "end", output={"paid": "{{ nodes.wait.output.payload }}"}),
        node("late", "end", output={"late": True}),
    ]
    edges = [
        edge("start", "first"),
        edge("first", "wait"),
        edge("wait", "done", "event"),
        edge("wait", "late", "timeout"),
    ]
    return WorkflowDefinition.model_validate({"nodes": nodes, "edges": edges})


def signal(sim: Simulation, name: str = "paid", payload: object = None) -> None:
    sim.send(SignalRun(tenant_id="acme", run_id=sim.run_id, name=name, payload=payload))


def refolded(sim: Simulation) -> RunState:
    state = RunState(run_id=sim.run_id, definition=sim.definition)
    for event in sim.log:
        state = evolve(state, event)
    return state


def test_a_signal_resumes_the_waiting_node_and_its_payload_is_the_output():
    sim = Simulation(waiting_workflow()).start()
    assert sim.state.node("wait").status is NodeStatus.SCHEDULED
    signal(sim, payload={"amount": 12})
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("wait").output["payload"] == {"amount": 12}
    assert sim.state.final_output == {"paid": {"amount": 12}}
    assert sim.state.node("late").status is NodeStatus.SKIPPED


def test_a_signal_of_another_name_leaves_the_node_waiting():
    sim = Simulation(waiting_workflow()).start()
    signal(sim, "shipped", {"x": 1})
    assert sim.state.node("wait").status is NodeStatus.SCHEDULED
    assert not sim.state.buffered


def test_a_condition_passes_over_signals_it_does_not_hold_for():
    condition = {"field": "payload.amount", "operator": "greater_than", "value": 10}
    sim = Simulation(waiting_workflow(condition=condition)).start()
    signal(sim, payload={"amount": 3})
    assert sim.state.node("wait").status is NodeStatus.SCHEDULED
    signal(sim, payload={"amount": 30})
    assert sim.state.final_output == {"paid": {"amount": 30}}


def test_the_wait_times_out_along_the_timeout_handle():
    sim = Simulation(waiting_workflow()).start().run_to_end()
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("wait").taken_handles == ("timeout",)
    assert sim.state.final_output == {"late": True}
    assert sim.state.node("done").status is NodeStatus.SKIPPED


def test_a_signal_after_the_timeout_changes_nothing():
    sim = Simulation(waiting_workflow()).start().run_to_end()
    before = len(sim.log)
    signal(sim, payload={"amount": 1})
    assert len(sim.log) == before


def early_sim(**wait) -> Simulation:
    """A run whose wait node comes after an http_request: a signal can arrive while it runs."""
    definition = waiting_workflow(**wait)
    nodes = [n.model_dump(mode="json", by_alias=True) for n in definition.nodes]
    nodes[1] = node("first", "http_request", url="http://example.test/")
    return Simulation(
        WorkflowDefinition.model_validate(
            {"nodes": nodes, "edges": [e.model_dump(mode="json", by_alias=True) for e in definition.edges]}
        )
    )


def test_an_early_signal_is_kept_when_the_node_accepts_earlier_events():
    sim = early_sim(accept_earlier_events=True).start()
    signal(sim, payload={"early": True})
    [kept] = [e for e in sim.log if isinstance(e, EventBuffered)]
    assert kept.expires_at - kept.received_at == timedelta(seconds=3600)
    sim.run_to_end()
    assert sim.state.final_output == {"paid": {"early": True}}
    assert not sim.state.buffered


def test_an_early_signal_is_dropped_when_the_node_does_not_accept_earlier_events():
    sim = early_sim().start()
    signal(sim, payload={"early": True})
    assert not sim.state.buffered
    sim.run_to_end()
    assert sim.state.final_output == {"late": True}


def test_a_kept_signal_older_than_its_keeping_time_is_not_taken():
    sim = early_sim(accept_earlier_events=True, keep_earlier_events_seconds=60).start()
    signal(sim, payload={"early": True})
    sim.advance(61)
    sim.run_to_end()
    assert sim.state.final_output == {"late": True}


def test_a_signal_to_a_finished_run_changes_nothing():
    sim = Simulation(waiting_workflow()).start()
    signal(sim, payload=1)
    before = len(sim.log)
    signal(sim, payload=2)
    assert len(sim.log) == before


def respond_workflow(kind: str) -> WorkflowDefinition:
    nodes = [
        node("start", "trigger", kind=kind),
        node(
            "answer",
            "respond_to_webhook",
            status=201,
            headers={"X-Order": "{{ trigger.body.order }}"},
            body={"ok": True, "order": "{{ trigger.body.order }}"},
        ),
        node("done", "end"),
    ]
    edges = [edge("start", "answer"), edge("answer", "done")]
    return WorkflowDefinition.model_validate({"nodes": nodes, "edges": edges})


def test_a_respond_node_answers_the_webhook_call_with_its_rendered_templates():
    sim = Simulation(respond_workflow("webhook")).start({"body": {"order": "A-7"}}, kind="webhook")
    [answer] = [e for e in sim.log if isinstance(e, WebhookResponded)]
    assert (answer.status, answer.headers, answer.body) == (
        201,
        {"X-Order": "A-7"},
        {"ok": True, "order": "A-7"},
    )
    assert sim.state.node("answer").output == {
        "status": 201,
        "headers": {"X-Order": "A-7"},
        "body": {"ok": True, "order": "A-7"},
    }
    assert sim.state.status is RunStatus.COMPLETED


def test_a_respond_node_in_a_run_no_webhook_started_fails_with_not_a_webhook_run():
    sim = Simulation(respond_workflow("webhook")).start({"body": {"order": "A-7"}}, kind="manual")
    assert sim.state.node("answer").error.type == "not_a_webhook_run"
    assert sim.state.status is RunStatus.FAILED
    assert not [e for e in sim.log if isinstance(e, WebhookResponded)]


signals = st.lists(
    st.tuples(st.sampled_from(["paid", "shipped"]), st.integers(0, 20), st.integers(0, 300)), max_size=8
)


@settings(max_examples=150, deadline=None)
@given(early=signals, late=signals, accept=st.booleans())
def test_any_mix_of_signals_folds_to_the_state_decide_returned_and_resumes_at_most_once(early, late, accept):
    condition = {"field": "payload", "operator": "greater_than", "value": 5}
    sim = early_sim(accept_earlier_events=accept, keep_earlier_events_seconds=120, condition=condition)
    sim.start()
    for name, payload, pause in early:
        sim.advance(pause)
        signal(sim, name, payload)
    sim.send(sim.runner(sim.commands.pop()))
    for name, payload, pause in late:
        sim.advance(pause)
        signal(sim, name, payload)
    assert refolded(sim) == sim.state
    resumes = [e for e in sim.log if getattr(e, "node_id", None) == "wait" and e.type == "node.succeeded"]
    assert len(resumes) <= 1
    if resumes and resumes[0].taken_handles == ("event",):
        assert resumes[0].output["name"] == "paid" and resumes[0].output["payload"] > 5
    if not accept:
        assert not sim.state.buffered


def record_workflow(**wait) -> WorkflowDefinition:
    """manual -> set (the order id) -> wait for its record -> got | late."""
    nodes = [
        node("start", "trigger", kind="manual"),
        node("first", "http_request", url="http://example.test/"),
        node(
            "wait",
            "wait_for_event",
            event="record",
            pipeline_id="orders",
            record_id="{{ trigger.order }}",
            wait_seconds=600,
            **wait,
        ),
        node("got", "end", output={"status": "{{ nodes.wait.output.payload.record.data.status }}"}),
        node("late", "end", output={"late": True}),
    ]
    edges = [
        edge("start", "first"),
        edge("first", "wait"),
        edge("wait", "got", "event"),
        edge("wait", "late", "timeout"),
    ]
    return WorkflowDefinition.model_validate({"nodes": nodes, "edges": edges})


def record_event(sim: Simulation, record_id: str, status: str, event_id=None) -> None:
    sim.send(
        DeliverRecordEvent(
            tenant_id="acme",
            run_id=sim.run_id,
            node_id="wait",
            event_id=event_id or uuid4(),
            event_type="record.updated",
            pipeline_id="orders",
            record_id=record_id,
            data={"status": status},
            occurred_at=sim.now,
        )
    )


def test_a_record_event_resumes_the_node_waiting_for_that_record():
    sim = Simulation(record_workflow()).start({"order": "o-1"})
    sim.send(sim.runner(sim.commands.pop()))
    [scheduled] = [e for e in sim.log if getattr(e, "node_id", None) == "wait" and e.type == "node.scheduled"]
    assert scheduled.input == {"event": "record", "pipeline_id": "orders", "record_id": "o-1", "until": ANY}
    record_event(sim, "o-1", "paid")
    assert sim.state.final_output == {"status": "paid"}
    assert sim.state.node("wait").output["source"] == "record"


def test_a_record_condition_passes_over_events_it_does_not_hold_for():
    condition = {"field": "payload.record.data.status", "operator": "equals", "value": "paid"}
    sim = Simulation(record_workflow(condition=condition)).start({"order": "o-1"})
    sim.send(sim.runner(sim.commands.pop()))
    record_event(sim, "o-1", "open")
    assert sim.state.node("wait").status is NodeStatus.SCHEDULED
    record_event(sim, "o-1", "paid")
    assert sim.state.final_output == {"status": "paid"}


def test_a_node_keeping_earlier_record_events_registers_its_wait_at_the_start_and_takes_the_kept_one():
    sim = Simulation(record_workflow(accept_earlier_events=True)).start({"order": "o-9"})
    [registered] = [e for e in sim.log if isinstance(e, RecordWaitRegistered)]
    assert (registered.node_id, registered.pipeline_id, registered.record_id) == ("wait", "orders", "o-9")
    event_id = uuid4()
    record_event(sim, "o-9", "shipped", event_id)
    record_event(sim, "o-9", "shipped", event_id)  # the same record event twice is kept once
    assert len(sim.state.buffered) == 1
    sim.run_to_end()
    assert sim.state.final_output == {"status": "shipped"}


def test_an_early_record_event_is_dropped_when_the_node_does_not_keep_earlier_events():
    sim = Simulation(record_workflow()).start({"order": "o-9"})
    assert not [e for e in sim.log if isinstance(e, RecordWaitRegistered)]
    record_event(sim, "o-9", "shipped")
    assert not sim.state.buffered
    sim.run_to_end()
    assert sim.state.final_output == {"late": True}
