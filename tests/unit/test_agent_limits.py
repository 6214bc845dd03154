"""The ai_agent node's bounds in the pure core: turns, tool calls, tokens, wall time, result size, the
answer's schema, approvals of side-effecting calls and retries of failed turns."""

from __future__ import annotations

from datetime import timedelta

import pytest
from millrace_common.contracts.messages.node_commands import NodeSucceededResult
from millrace_common.contracts.messages.run_commands import FireTimer, ResumeRun
from millrace_common.contracts.messages.run_events import (
    AgentToolCallFinished,
    AgentTurnRequested,
    ApprovalDecided,
    ApprovalRequested,
    NodeSucceeded,
)
from millrace_common.language.agent_tools import arguments_hash
from millrace_orchestrator.domain.state import NodeStatus, RunStatus

from tests.unit.agent_world import (
    DEALS,
    RECORDS,
    START,
    Run,
    Runners,
    agent_workflow,
    call,
    deals_model,
    deals_run,
)

pytestmark = pytest.mark.unit


def test_a_runaway_model_stops_at_its_turn_limit():
    def runaway(messages):
        return {
            "content": None,
            "tool_calls": [call("find_records", {"pipeline": "deals"}, f"c{len(messages)}")],
        }

    run = deals_run(runaway, max_turns=4).start({"min": 1})

    assert run.state.status is RunStatus.FAILED
    assert run.agent.error.type == "agent_limit"
    assert "4 model turns" in run.agent.error.message
    assert len(run.events(AgentTurnRequested)) == 4


def test_the_tool_call_limit_refuses_further_calls_and_the_token_budget_fails_the_node():
    def greedy(messages):
        if sum(m["role"] == "tool" for m in messages) < 3:
            return {
                "content": None,
                "tool_calls": [call("find_records", {"pipeline": "deals"}, f"c{len(messages)}")],
            }
        return {"content": "enough", "tool_calls": []}

    limited = deals_run(greedy, max_tool_calls=1).start({"min": 1})
    assert limited.state.status is RunStatus.COMPLETED
    assert [f.outcome for f in limited.events(AgentToolCallFinished)] == ["succeeded", "refused", "refused"]
    assert "limit of 1 tool calls" in limited.events(AgentToolCallFinished)[1].content

    spent = deals_run(greedy, max_total_tokens=200).start({"min": 1})
    assert spent.agent.status is NodeStatus.FAILED
    assert spent.agent.error.type == "agent_limit" and "max_total_tokens of 200" in spent.agent.error.message


def test_a_failing_tool_is_reported_to_the_model_which_goes_on():
    def model(messages):
        results = [m for m in messages if m["role"] == "tool"]
        if not results:
            return {"content": None, "tool_calls": [call("find_records", {"pipeline": "deals"})]}
        return {"content": "the store is down: " + results[0]["content"][:40], "tool_calls": []}

    run = deals_run(model)
    run.runners.fail_tools = True
    run.start({"min": 1})

    assert run.state.status is RunStatus.COMPLETED
    finished = run.events(AgentToolCallFinished)
    assert finished[0].outcome == "failed" and "503" in finished[0].content
    assert run.agent.output["answer"].startswith("the store is down")


def test_tool_results_are_cut_before_the_model_sees_them():
    def model(messages):
        if not any(m["role"] == "tool" for m in messages):
            return {"content": None, "tool_calls": [call("find_records", {"pipeline": "deals"})]}
        return {"content": "too much to read", "tool_calls": []}

    run = deals_run(model, tool_result_max_chars=100)
    run.runners.records = {
        f"d{i}": {"amount": 20_000 + i, "status": "open", "name": "x" * 50} for i in range(20)
    }
    run.start({"min": 10_000})

    first = run.events(AgentToolCallFinished)[0]
    assert len(first.content) < 200 and "cut here" in first.content


def test_an_answer_that_breaks_the_output_schema_is_sent_back_once_more():
    answers = iter(['{"count": "two"}', '{"count": 2}'])

    def model(messages):
        return {"content": next(answers), "tool_calls": []}

    schema = {"type": "object", "properties": {"count": {"type": "integer"}}, "required": ["count"]}
    run = deals_run(model, output_schema=schema).start({"min": 1})

    assert run.agent.output["data"] == {"count": 2}
    retried = run.events(AgentTurnRequested)[1]
    assert retried.prompt and "/count" in retried.prompt
    assert "JSON Schema" in run.runners.requests[0]["messages"][0]["content"]


def test_a_side_effecting_call_waits_for_its_approval_bound_to_its_arguments():
    tools = [RECORDS | {"approval": True}]
    run = deals_run(tools=tools, approver={"role": "admin"}).start({"min": 10_000})

    requested = run.events(ApprovalRequested)
    first_step, second_step = (r.node_id for r in requested)
    assert [step.rsplit(".", 1)[0] for step in (first_step, second_step)] == ["agent#t2.0", "agent#t2.1"]
    first = requested[0]
    assert first.data["arguments_sha256"] == arguments_hash("update_record", first.data["arguments"])
    assert not run.runners.writes.get((first_step, 1))
    assert run.state.status is RunStatus.RUNNING

    run.send(
        ResumeRun(tenant_id="t1", run_id=run.run_id, node_id=first_step, decision="approved", decided_by="a")
    )
    assert run.runners.writes[(first_step, 1)] == 1
    run.send(
        ResumeRun(tenant_id="t1", run_id=run.run_id, node_id=second_step, decision="rejected", note="no")
    )

    assert run.state.status is RunStatus.COMPLETED
    outcomes = {f.step: (f.outcome, f.content) for f in run.events(AgentToolCallFinished)}
    assert outcomes[second_step] == ("rejected", "not run: the approver rejected this call: no")
    assert [k for k, r in run.runners.records.items() if r.get("review")] == ["d1"]
    # A second decision on a call already decided changes nothing.
    before = len(run.log)
    run.send(ResumeRun(tenant_id="t1", run_id=run.run_id, node_id=first_step, decision="approved"))
    assert len(run.log) == before


def test_the_node_takes_as_long_as_its_loop_did():
    run = deals_run(tools=[RECORDS | {"approval": True}], approver={"role": "admin"})
    run.start({"min": 10_000})
    run.now = START + timedelta(seconds=90)
    for step in (r.node_id for r in run.events(ApprovalRequested)):
        run.send(ResumeRun(tenant_id="t1", run_id=run.run_id, node_id=step, decision="approved"))
    succeeded = next(e for e in run.log if isinstance(e, NodeSucceeded) and e.node_id == "agent")
    assert succeeded.duration_ms == 90_000


def test_the_wall_time_limit_fails_the_node():
    run = deals_run(tools=[RECORDS | {"approval": True}], approver={"role": "admin"}, max_seconds=60)
    run.start({"min": 10_000})
    assert run.state.status is RunStatus.RUNNING
    deadline = next(t for t in run.state.timers.values() if t.purpose == "agent_deadline")
    run.now = START + timedelta(seconds=61)
    run.send(FireTimer(tenant_id="t1", run_id=run.run_id, timer_id=deadline.timer_id))

    assert run.agent.status is NodeStatus.FAILED
    assert run.agent.error.type == "agent_limit" and "60 s" in run.agent.error.message
    # The calls' pending approvals are closed with the node, not left in an inbox.
    closed = [e for e in run.log if isinstance(e, ApprovalDecided)]
    assert sorted(e.node_id for e in closed) == sorted(r.node_id for r in run.events(ApprovalRequested))
    assert {e.decision for e in closed} == {"timeout"}


def test_a_failed_turn_is_retried_by_policy_and_stale_answers_are_ignored():
    failures = iter([True])

    def flaky(messages):
        if next(failures, False):
            raise RuntimeError
        return deals_model(messages)

    definition = agent_workflow(retry={"max_attempts": 2, "backoff_seconds": 1})
    runners = Runners(flaky, definition.node("agent").data, records={k: dict(v) for k, v in DEALS.items()})
    run = Run(definition, runners).start({"min": 10_000})
    assert run.agent.status is NodeStatus.RETRYING
    retry = next(t for t in run.state.timers.values() if t.purpose == "retry")
    run.now = retry.fire_at
    run.send(FireTimer(tenant_id="t1", run_id=run.run_id, timer_id=retry.timer_id))

    assert run.state.status is RunStatus.COMPLETED
    assert run.agent.attempt == 2
    # An answer to the first attempt's turn arriving now is not taken.
    before = len(run.log)
    stale = NodeSucceededResult(
        tenant_id="t1",
        run_id=run.run_id,
        node_id="agent#m1",
        attempt=1,
        output={"message": {"content": "late"}},
        duration_ms=1,
    )
    run.send(stale)
    assert len(run.log) == before


def test_a_retried_node_that_asks_for_another_write_at_the_same_place_gets_a_key_of_its_own():
    """Attempt 1 updates d1 and then its next turn fails; attempt 2 asks, at the same place, to update
    d4: a different call, so it is written (not answered with d1's stored write)."""
    attempts = iter(["d1", "d4"])
    failed_once = iter([True])
    target: list[str] = []

    def model(messages):
        if not any(m["role"] == "tool" for m in messages):
            target.append(next(attempts))
            update = {"pipeline": "deals", "record_id": target[-1], "data": {"review": True}}
            return {"content": None, "tool_calls": [call("update_record", update, "u")]}
        if next(failed_once, False):
            raise RuntimeError
        return {"content": "done", "tool_calls": []}

    definition = agent_workflow(retry={"max_attempts": 2, "backoff_seconds": 1})
    runners = Runners(model, definition.node("agent").data, records={k: dict(v) for k, v in DEALS.items()})
    run = Run(definition, runners).start({"min": 1})
    retry = next(t for t in run.state.timers.values() if t.purpose == "retry")
    run.now = retry.fire_at
    run.send(FireTimer(tenant_id="t1", run_id=run.run_id, timer_id=retry.timer_id))

    assert run.state.status is RunStatus.COMPLETED
    assert [k for k, r in sorted(run.runners.records.items()) if r.get("review")] == ["d1", "d4"]
    steps = [key for key, _ in run.runners.writes]
    assert len(steps) == len(set(steps)) == 2
    assert {step.rsplit(".", 1)[0] for step in steps} == {"agent#t1.0"}


def test_tool_calls_on_the_last_turn_are_not_run_and_server_ids_are_made_usable():
    def model(messages):
        said = {
            "id": "",
            "type": "function",
            "function": {"name": "find_records", "arguments": '{"pipeline": "deals"}'},
        }
        return {"content": None, "tool_calls": [said, said]}  # a server that leaves the ids empty

    run = deals_run(model, max_turns=2).start({"min": 1})

    assert run.agent.error.type == "agent_limit"
    assert len([c for c in run.sent if "#t" in c.node_id]) == 2  # turn 1's two calls; none of turn 2's
    first_turn = run.runners.requests[1]["messages"]
    assistant = next(m for m in first_turn if m["role"] == "assistant")
    assert [c["id"] for c in assistant["tool_calls"]] == ["call_0", "call_1"]
    assert sorted(m["tool_call_id"] for m in first_turn if m["role"] == "tool") == ["call_0", "call_1"]
