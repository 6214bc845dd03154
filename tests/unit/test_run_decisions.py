"""The orchestrator's pure core: a run of trigger -> http_request -> end, decided message by message."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from millrace_common.contracts.messages.node_commands import (
    ExecuteNode,
    NodeError,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.messages.run_commands import CancelRun, RetryRun, StartRun, TriggerData
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.decide import decide
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, evolve

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SLICE = WorkflowDefinition.model_validate(
    {
        "nodes": [
            {"id": "start", "type": "trigger", "data": {"name": "New lead", "kind": "record_created"}},
            {
                "id": "call",
                "type": "http_request",
                "data": {"name": "Notify", "url": "http://example.test/hook"},
            },
            {"id": "done", "type": "end", "data": {"name": "End"}},
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "call"},
            {"id": "e2", "source": "call", "target": "done"},
        ],
    }
)


def kinds(events) -> list[str]:
    """Event types without the timers that accompany them."""
    return [e.type for e in events if not e.type.startswith("timer.")]


def ids():
    counter = itertools.count(1)
    return lambda: UUID(int=next(counter))


def start_run(run_id: UUID) -> StartRun:
    return StartRun(
        tenant_id="acme",
        run_id=run_id,
        workflow_id=uuid4(),
        workflow_version=1,
        trigger=TriggerData(kind="record_created", data={"record": {"id": "r1"}}),
        idempotency_key="evt-1:wf-1",
    )


def fold(state: RunState, events) -> RunState:
    for event in events:
        state = evolve(state, event)
    return state


def test_starting_a_run_schedules_the_first_side_effecting_node():
    run_id = uuid4()
    decision = decide(RunState(run_id=run_id, definition=SLICE), start_run(run_id), now=NOW, new_id=ids())

    assert kinds(decision.events) == ["run.started", "node.succeeded", "node.scheduled"]
    assert [e.seq for e in decision.events] == list(range(1, len(decision.events) + 1))
    (command,) = decision.commands
    assert isinstance(command.message, ExecuteNode)
    assert command.message.node_id == "call"
    assert command.message.attempt == 1
    assert command.message.input["url"] == "http://example.test/hook"
    assert command.key == str(run_id)


def test_a_duplicate_start_changes_nothing():
    run_id = uuid4()
    state = RunState(run_id=run_id, definition=SLICE)
    first = decide(state, start_run(run_id), now=NOW, new_id=ids())
    again = decide(fold(state, first.events), start_run(run_id), now=NOW, new_id=ids())
    assert again.events == () and again.commands == ()


def test_node_success_completes_the_run_through_the_end_node():
    run_id = uuid4()
    state = RunState(run_id=run_id, definition=SLICE)
    state = fold(state, decide(state, start_run(run_id), now=NOW, new_id=ids()).events)
    result = NodeSucceededResult(
        tenant_id="acme", run_id=run_id, node_id="call", attempt=1, output={"status": 200}, duration_ms=12.5
    )
    decision = decide(state, result, now=NOW, new_id=ids())

    assert kinds(decision.events) == ["node.succeeded", "node.succeeded", "run.completed"]
    final = fold(state, decision.events)
    assert final.status is RunStatus.COMPLETED
    assert final.node("call").output == {"status": 200}
    assert final.last_seq == decision.events[-1].seq


def test_a_result_for_a_stale_attempt_is_ignored():
    run_id = uuid4()
    state = RunState(run_id=run_id, definition=SLICE)
    state = fold(state, decide(state, start_run(run_id), now=NOW, new_id=ids()).events)
    stale = NodeSucceededResult(
        tenant_id="acme", run_id=run_id, node_id="call", attempt=2, output={}, duration_ms=1
    )
    assert decide(state, stale, now=NOW, new_id=ids()).events == ()


def test_node_failure_fails_the_run_with_the_reason():
    run_id = uuid4()
    state = RunState(run_id=run_id, definition=SLICE)
    state = fold(state, decide(state, start_run(run_id), now=NOW, new_id=ids()).events)
    failure = NodeFailedResult(
        tenant_id="acme",
        run_id=run_id,
        node_id="call",
        attempt=1,
        error=NodeError(type="http_status", message="server answered 404", retryable=False),
        duration_ms=3,
    )
    final = fold(state, decide(state, failure, now=NOW, new_id=ids()).events)
    assert final.status is RunStatus.FAILED
    assert final.node("call").status is NodeStatus.FAILED
    assert final.node("done").status is NodeStatus.PENDING


def failed_run(run_id: UUID) -> RunState:
    state = RunState(run_id=run_id, definition=SLICE)
    state = fold(state, decide(state, start_run(run_id), now=NOW, new_id=ids()).events)
    failure = NodeFailedResult(
        tenant_id="acme",
        run_id=run_id,
        node_id="call",
        attempt=1,
        error=NodeError(type="connection", message="refused", retryable=False),
        duration_ms=3,
    )
    return fold(state, decide(state, failure, now=NOW, new_id=ids()).events)


def test_retrying_a_failed_run_schedules_the_failed_node_again_and_keeps_earlier_outputs():
    run_id = uuid4()
    state = failed_run(run_id)
    decision = decide(state, RetryRun(tenant_id="acme", run_id=run_id), now=NOW, new_id=ids())

    assert kinds(decision.events) == ["run.retried", "node.scheduled"]
    (command,) = decision.commands
    assert command.message.attempt == 2
    retried = fold(state, decision.events)
    assert retried.status is RunStatus.RUNNING
    assert retried.node("start").output == {"kind": "record_created", "data": {"record": {"id": "r1"}}}


def test_retry_is_refused_unless_the_run_failed():
    run_id = uuid4()
    state = RunState(run_id=run_id, definition=SLICE)
    state = fold(state, decide(state, start_run(run_id), now=NOW, new_id=ids()).events)
    assert decide(state, RetryRun(tenant_id="acme", run_id=run_id), now=NOW, new_id=ids()).events == ()


def test_a_cancelled_run_ignores_the_results_that_arrive_later():
    run_id = uuid4()
    state = RunState(run_id=run_id, definition=SLICE)
    state = fold(state, decide(state, start_run(run_id), now=NOW, new_id=ids()).events)
    cancelled = fold(
        state, decide(state, CancelRun(tenant_id="acme", run_id=run_id), now=NOW, new_id=ids()).events
    )
    assert cancelled.status is RunStatus.CANCELLED

    late = NodeSucceededResult(
        tenant_id="acme", run_id=run_id, node_id="call", attempt=1, output={}, duration_ms=1
    )
    assert decide(cancelled, late, now=NOW, new_id=ids()).events == ()
    assert decide(cancelled, CancelRun(tenant_id="acme", run_id=run_id), now=NOW, new_id=ids()).events == ()


def templated(body: object) -> WorkflowDefinition:
    raw = SLICE.model_dump(mode="json", by_alias=True)
    raw["nodes"][1]["data"]["body"] = body
    return WorkflowDefinition.model_validate(raw)


def test_the_node_command_carries_its_config_with_templates_rendered_from_the_trigger():
    run_id = uuid4()
    definition = templated({"who": "{{ trigger.record.id | upper }}", "kind": "{{ trigger.kind }}"})
    decision = decide(
        RunState(run_id=run_id, definition=definition), start_run(run_id), now=NOW, new_id=ids()
    )
    (command,) = decision.commands
    assert command.message.input["body"] == {"who": "R1", "kind": "record_created"}


def test_a_template_that_fails_to_render_fails_the_node_and_the_run_with_the_reason():
    run_id = uuid4()
    definition = templated({"who": "{{ trigger.record.missing.deeper }}"})
    decision = decide(
        RunState(run_id=run_id, definition=definition), start_run(run_id), now=NOW, new_id=ids()
    )
    assert decision.commands == ()
    assert kinds(decision.events)[-2:] == ["node.failed", "run.failed"]
    assert decision.events[-2].error.type == "template"
    assert "missing" in decision.events[-2].error.message
