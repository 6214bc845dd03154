"""Control flow in the orchestrator's pure core: branches, joins, variables, delays, retries,
timeouts and on-error modes, driven through run_simulation without any I/O."""

from __future__ import annotations

from datetime import timedelta
from uuid import uuid4

import pytest
from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_commands import FireTimer, ResumeRun, StartRun, TriggerData
from millrace_common.contracts.messages.run_events import TimerScheduled
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.decide import WorkflowLoad, decide
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, evolve

from tests.unit.run_simulation import START, Simulation, fail_with, succeed_with

pytestmark = pytest.mark.unit


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def workflow(nodes: list[dict], edges: list[dict], **settings) -> WorkflowDefinition:
    trigger = node("start", "trigger", kind="manual")
    return WorkflowDefinition.model_validate(
        {"nodes": [trigger, *nodes], "edges": edges, "settings": settings}
    )


def amount_over(limit: int) -> dict:
    return {"field": "trigger.amount", "operator": "greater_than", "value": limit}


def test_a_condition_takes_one_branch_and_skips_the_other_down_to_the_join():
    definition = workflow(
        [
            node("check", "condition", condition=amount_over(100)),
            node("big", "set", variables={"size": "big"}),
            node("small", "set", variables={"size": "small"}),
            node("after_small", "http_request", url="http://example.test/small"),
            node("join", "end"),
        ],
        [
            edge("start", "check"),
            edge("check", "big", "true"),
            edge("check", "small", "false"),
            edge("small", "after_small"),
            edge("big", "join"),
            edge("after_small", "join"),
        ],
    )
    sim = Simulation(definition).start({"amount": 250}).run_to_end()

    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("check").output == {"result": True}
    assert sim.state.node("big").status is NodeStatus.SUCCEEDED
    assert sim.state.node("small").status is NodeStatus.SKIPPED
    assert sim.state.node("after_small").status is NodeStatus.SKIPPED
    assert sim.state.node("join").status is NodeStatus.SUCCEEDED
    assert dict(sim.state.variables) == {"size": "big"}
    assert sim.commands == []


def test_a_switch_follows_the_first_matching_case_or_the_default():
    cases = [
        {"name": "vip", "condition": amount_over(1000)},
        {"name": "big", "condition": amount_over(100)},
    ]
    definition = workflow(
        [node("route", "switch", cases=cases), node("vip", "end"), node("big", "end"), node("other", "end")],
        [
            edge("start", "route"),
            edge("route", "vip", "case:vip"),
            edge("route", "big", "case:big"),
            edge("route", "other", "default"),
        ],
    )
    for amount, taken in ((5000, "vip"), (500, "big"), (5, "other")):
        sim = Simulation(definition).start({"amount": amount}).run_to_end()
        succeeded = {n for n in ("vip", "big", "other") if sim.state.node(n).status is NodeStatus.SUCCEEDED}
        assert succeeded == {taken}
        assert sim.state.status is RunStatus.COMPLETED


def test_parallel_branches_join_only_when_both_arrived():
    definition = workflow(
        [
            node("a", "http_request", url="http://example.test/a"),
            node("b", "http_request", url="http://example.test/b"),
            node("join", "end"),
        ],
        [edge("start", "a"), edge("start", "b"), edge("a", "join"), edge("b", "join")],
    )
    sim = Simulation(definition).start()
    assert {c.node_id for c in sim.commands} == {"a", "b"}
    sim.send(succeed_with()(sim.commands.pop(0)))
    assert sim.state.node("join").status is NodeStatus.PENDING
    sim.run_to_end()
    assert sim.state.node("join").status is NodeStatus.SUCCEEDED
    assert sim.state.status is RunStatus.COMPLETED


def test_node_outputs_and_variables_feed_later_templates():
    definition = workflow(
        [
            node("vars", "set", variables={"total": "{{ trigger.qty * 3 }}"}),
            node(
                "call",
                "http_request",
                url="http://example.test/{{ vars.total }}",
                body={"t": "{{ vars.total }}"},
            ),
            node("done", "end", output={"status": "{{ nodes.call.output.status }}"}),
        ],
        [edge("start", "vars"), edge("vars", "call"), edge("call", "done")],
    )
    sim = Simulation(definition, runner=succeed_with(lambda c: {"status": 201})).start({"qty": 4})
    (command,) = sim.commands
    assert command.input["url"] == "http://example.test/12"
    assert command.input["body"] == {"t": 12}
    sim.run_to_end()
    assert sim.state.node("done").output == {"status": 201}


def test_a_runner_node_gets_its_templated_fields_rendered_and_the_rest_as_configured():
    definition = workflow(
        [
            node(
                "call",
                "http_request",
                method="POST",
                url="http://example.test/items/{{ trigger.id }}",
                headers={"X-Plain": "as written", "X-Id": "{{ trigger.id }}"},
                query={"page": "1"},
                body={"nested": [{"n": 1}, "{{ trigger.id * 2 }}"], "{{ key }}": "keys are not rendered"},
                timeout_seconds=5,
            ),
        ],
        [edge("start", "call")],
    )
    sim = Simulation(definition).start({"id": 21})
    (command,) = sim.commands
    configured = definition.node("call").data.model_dump(mode="json", by_alias=True)
    del configured["name"]
    assert list(command.input) == list(configured)  # the configuration's order, as the log holds it
    assert command.input == {
        **configured,
        "url": "http://example.test/items/21",
        "headers": {"X-Plain": "as written", "X-Id": 21},
        "body": {"nested": [{"n": 1}, 42], "{{ key }}": "keys are not rendered"},
    }


def test_a_code_node_gets_its_code_as_written_and_the_whole_context():
    code = 'def main():\n    return {"text": "{{ not rendered }}", "n": context["vars"]["n"]}\n'
    definition = workflow(
        [node("vars", "set", variables={"n": "{{ trigger.n + 1 }}"}), node("run", "code", code=code)],
        [edge("start", "vars"), edge("vars", "run")],
    )
    sim = Simulation(definition).start({"n": 41})
    (command,) = sim.commands
    assert command.input["code"] == code  # a literal field: never rendered, braces and all
    context = command.input["context"]
    assert context["trigger"] == {"kind": "manual", "n": 41}
    assert context["vars"] == {"n": 42}
    assert context["nodes"]["vars"]["output"] == {"n": 42}


def test_a_field_that_cannot_render_fails_its_node_saying_why():
    definition = workflow(
        [
            node(
                "call",
                "http_request",
                url="http://example.test/",
                headers={"X-Id": "{{ trigger.nope.deeper }}"},
            )
        ],
        [edge("start", "call")],
    )
    sim = Simulation(definition).start({"id": 21})
    assert sim.commands == []
    error = sim.state.node("call").error
    assert error is not None and error.type == NodeErrorType.TEMPLATE
    assert error.message.startswith("X-Id: ") and "trigger.nope" in error.message


def test_a_wait_delay_holds_the_run_until_its_timer_fires():
    definition = workflow(
        [node("pause", "wait_delay", duration_seconds=3600), node("done", "end")],
        [edge("start", "pause"), edge("pause", "done")],
    )
    sim = Simulation(definition).start()
    (timer,) = [t for t in sim.state.timers.values() if t.purpose == "delay"]
    assert timer.fire_at == START + timedelta(hours=1)
    sim.send(FireTimer(tenant_id="acme", run_id=sim.run_id, timer_id=timer.timer_id))
    sim.send(FireTimer(tenant_id="acme", run_id=sim.run_id, timer_id=timer.timer_id))  # redelivered: no-op
    assert sim.types().count("node.succeeded") == 3
    assert sim.state.status is RunStatus.COMPLETED


def test_a_retryable_failure_is_retried_with_growing_back_off_until_it_succeeds():
    definition = workflow(
        [
            node(
                "call",
                "http_request",
                url="http://example.test",
                retry={"max_attempts": 4, "backoff_seconds": 10, "backoff_multiplier": 2},
            ),
            node("done", "end"),
        ],
        [edge("start", "call"), edge("call", "done")],
    )
    answers = iter(
        [fail_with(NodeError(type="http_status", message="503", retryable=True))] * 2 + [succeed_with()]
    )
    sim = Simulation(definition, runner=lambda command: next(answers)(command)).start().run_to_end()

    assert sim.state.status is RunStatus.COMPLETED
    assert sim.node_events("call") == [
        "node.scheduled",
        "node.retry_scheduled",
        "node.scheduled",
        "node.retry_scheduled",
        "node.scheduled",
        "node.succeeded",
    ]
    waits = [e.retry_at - e.occurred_at for e in sim.log if e.type == "node.retry_scheduled"]
    assert timedelta(seconds=8) <= waits[0] <= timedelta(seconds=12)
    assert timedelta(seconds=16) <= waits[1] <= timedelta(seconds=24)
    assert sim.state.node("call").attempt == 3


def test_a_non_retryable_failure_is_not_retried():
    definition = workflow(
        [node("call", "http_request", url="http://example.test", retry={"max_attempts": 5})],
        [edge("start", "call")],
    )
    sim = (
        Simulation(
            definition, runner=fail_with(NodeError(type="http_status", message="404", retryable=False))
        )
        .start()
        .run_to_end()
    )
    assert sim.node_events("call") == ["node.scheduled", "node.failed"]
    assert sim.state.status is RunStatus.FAILED


def test_without_a_node_policy_the_workflow_retry_count_applies():
    definition = workflow(
        [node("call", "http_request", url="http://example.test")], [edge("start", "call")], retry_count=2
    )
    sim = (
        Simulation(
            definition, runner=fail_with(NodeError(type="connection", message="refused", retryable=True))
        )
        .start()
        .run_to_end()
    )
    assert sim.node_events("call").count("node.scheduled") == 3
    assert sim.state.status is RunStatus.FAILED


def test_an_error_edge_carries_the_run_on_after_a_failure():
    definition = workflow(
        [
            node("call", "http_request", url="http://example.test", on_error="error_edge"),
            node("ok", "end"),
            node("recover", "set", variables={"why": "{{ nodes.call.error.message }}"}),
        ],
        [edge("start", "call"), edge("call", "ok"), edge("call", "recover", "error")],
        retry_count=0,
    )
    sim = (
        Simulation(
            definition,
            runner=fail_with(NodeError(type="http_status", message="server answered 400", retryable=False)),
        )
        .start()
        .run_to_end()
    )
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("ok").status is NodeStatus.SKIPPED
    assert dict(sim.state.variables) == {"why": "server answered 400"}


def test_a_fallback_output_stands_in_for_a_failed_node():
    definition = workflow(
        [
            node(
                "call",
                "http_request",
                url="http://example.test",
                on_error="fallback",
                fallback_output={"status": 0},
            ),
            node("done", "end", output={"s": "{{ nodes.call.output.status }}"}),
        ],
        [edge("start", "call"), edge("call", "done")],
        retry_count=0,
    )
    sim = (
        Simulation(definition, runner=fail_with(NodeError(type="timeout", message="slow", retryable=True)))
        .start()
        .run_to_end()
    )
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("done").output == {"s": 0}


def test_a_node_whose_result_is_late_waits_for_it_with_no_timer_no_failure_and_no_second_attempt():
    # The runner ends an overrunning node with a `timeout` result itself, and a runner that dies
    # mid-command leaves the command uncommitted in Kafka for the next one: while a result may still
    # come, the node waits, however long (the run's own timeout bounds it).
    definition = workflow(
        [node("call", "http_request", url="http://example.test", timeout_seconds=5)],
        [edge("start", "call")],
        retry_count=3,
    )
    sim = Simulation(definition).start()
    late = sim.commands.pop()
    assert [t.purpose for t in sim.state.timers.values()] == ["run_timeout"]
    sim.now = START + timedelta(hours=1) - timedelta(seconds=1)
    assert sim.state.node("call").status is NodeStatus.SCHEDULED and sim.commands == []
    sim.send(succeed_with()(late))
    assert sim.state.status is RunStatus.COMPLETED and sim.state.node("call").attempt == 1


def test_a_node_timeout_timer_of_an_older_version_does_nothing():
    definition = workflow(
        [node("call", "http_request", url="http://example.test", timeout_seconds=5)],
        [edge("start", "call")],
    )
    sim = Simulation(definition).start()
    late = sim.commands.pop()
    old = TimerScheduled(
        tenant_id="acme",
        run_id=sim.run_id,
        timer_id=uuid4(),
        fire_at=START + timedelta(seconds=20),
        purpose="node_timeout",
        node_id="call",
        attempt=1,
    )
    sim.state = evolve(sim.state, old)
    sim.now = old.fire_at
    sim.send(FireTimer(tenant_id="acme", run_id=sim.run_id, timer_id=old.timer_id))
    assert sim.state.node("call").status is NodeStatus.SCHEDULED and sim.commands == []
    sim.send(succeed_with()(late))
    assert sim.state.status is RunStatus.COMPLETED


def test_a_run_that_outlives_its_timeout_is_timed_out():
    definition = workflow(
        [node("pause", "wait_delay", duration_seconds=7200)], [edge("start", "pause")], timeout_minutes=60
    )
    sim = Simulation(definition).start()
    run_timer = next(t for t in sim.state.timers.values() if t.purpose == "run_timeout")
    sim.now = run_timer.fire_at
    sim.send(FireTimer(tenant_id="acme", run_id=sim.run_id, timer_id=run_timer.timer_id))
    assert sim.state.status is RunStatus.TIMED_OUT
    assert dict(sim.state.timers) == {}


def test_a_condition_comparing_mismatched_types_fails_the_node_with_the_reason():
    definition = workflow([node("check", "condition", condition=amount_over(100))], [edge("start", "check")])
    sim = Simulation(definition).start({"amount": "lots"}).run_to_end()
    assert sim.state.status is RunStatus.FAILED
    assert sim.state.node("check").error.type == "condition"
    assert "cannot compare" in sim.state.node("check").error.message


def test_the_workflow_retry_count_survives_storing_the_definition():
    definition = workflow(
        [node("call", "http_request", url="http://example.test")], [edge("start", "call")], retry_count=1
    )
    stored = WorkflowDefinition.model_validate(definition.model_dump(mode="json", by_alias=True))
    sim = (
        Simulation(stored, runner=fail_with(NodeError(type="connection", message="refused", retryable=True)))
        .start()
        .run_to_end()
    )
    assert sim.node_events("call").count("node.scheduled") == 2


def test_compared_values_in_conditions_are_templates():
    condition = {"field": "trigger.amount", "operator": "greater_than", "value": "{{ trigger.limit }}"}
    definition = workflow([node("check", "condition", condition=condition)], [edge("start", "check")])
    sim = Simulation(definition).start({"amount": 5, "limit": 3}).run_to_end()
    assert sim.state.node("check").output == {"result": True}


def approval_workflow(**approval) -> WorkflowDefinition:
    data = {"assignee": {"role": "approver"}, "title": "Pay {{ trigger.amount }}?", **approval}
    return workflow(
        [node("ask", "approval", **data), node("pay", "end"), node("refuse", "end"), node("late", "end")],
        [
            edge("start", "ask"),
            edge("ask", "pay", "approved"),
            edge("ask", "refuse", "rejected"),
            edge("ask", "late", "timeout"),
        ],
    )


def test_an_approval_pauses_the_run_until_the_decision_arrives_and_follows_it():
    sim = Simulation(approval_workflow()).start({"amount": 120})
    requested = next(e for e in sim.log if e.type == "approval.requested")
    assert requested.title == "Pay 120?" and requested.assignee == {"role": "approver"}
    assert requested.data["trigger"]["amount"] == 120
    assert sim.state.status is RunStatus.RUNNING

    sim.send(
        ResumeRun(
            tenant_id="acme",
            run_id=sim.run_id,
            node_id="ask",
            decision="rejected",
            decided_by="u1",
            note="no",
        )
    )
    sim.send(
        ResumeRun(tenant_id="acme", run_id=sim.run_id, node_id="ask", decision="approved", decided_by="u2")
    )
    assert sim.state.node("ask").output == {"decision": "rejected", "decided_by": "u1", "note": "no"}
    assert sim.state.node("refuse").status is NodeStatus.SUCCEEDED
    assert sim.state.node("pay").status is NodeStatus.SKIPPED
    assert sim.state.status is RunStatus.COMPLETED


def test_an_approval_deadline_takes_the_timeout_edge():
    sim = Simulation(approval_workflow(deadline_seconds=600)).start({"amount": 1})
    deadline = next(t for t in sim.state.timers.values() if t.purpose == "approval_deadline")
    assert deadline.fire_at == START + timedelta(seconds=600)
    sim.now = deadline.fire_at
    sim.send(FireTimer(tenant_id="acme", run_id=sim.run_id, timer_id=deadline.timer_id))
    assert sim.state.node("ask").output["decision"] == "timeout"
    assert sim.state.node("late").status is NodeStatus.SUCCEEDED
    assert sim.state.status is RunStatus.COMPLETED


def test_a_workflow_at_its_hourly_limit_throttles_new_runs_with_the_reason():
    definition = workflow(
        [node("done", "end")], [edge("start", "done")], max_executions_per_hour=5, max_concurrent_runs=2
    )
    sim = Simulation(definition)
    message = StartRun(
        tenant_id="acme",
        run_id=sim.run_id,
        workflow_id=uuid4(),
        workflow_version=1,
        trigger=TriggerData(kind="manual"),
        idempotency_key="k",
    )
    state = RunState(run_id=sim.run_id, definition=definition)
    hourly = decide(state, message, now=START, new_id=sim.new_id, load=WorkflowLoad(started_last_hour=5))
    assert [e.type for e in hourly.events] == ["run.throttled"]
    assert "max_executions_per_hour" in hourly.events[0].reason
    busy = decide(
        state, message, now=START, new_id=sim.new_id, load=WorkflowLoad(started_last_hour=1, running=2)
    )
    assert "max_concurrent_runs" in busy.events[0].reason
    free = decide(
        state, message, now=START, new_id=sim.new_id, load=WorkflowLoad(started_last_hour=4, running=1)
    )
    assert free.events[0].type == "run.started"
