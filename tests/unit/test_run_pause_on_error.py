"""``on_error: pause``: a node that failed after its last attempt pauses the run, its owner gets a task,
and a person goes on with ``run.continue`` (retry the node or skip it). Driven through the pure core;
the state lives in the run's log, so folding the log again gives the same paused run."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

import pytest
from millrace_common.contracts.messages.node_commands import ExecuteNode, NodeError
from millrace_common.contracts.messages.run_commands import CancelRun, ContinueRun, RetryRun
from millrace_common.contracts.messages.run_events import RunContinued, RunPaused
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.projection import paused_task_id, project
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, evolve

from tests.unit.run_simulation import Simulation, fail_with, succeed_with

pytestmark = pytest.mark.unit

BROKEN = NodeError(type="http_status", message="500 from the CRM", retryable=False)


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str) -> dict:
    return {"id": f"{source}-{target}", "source": source, "target": target}


def workflow(nodes: list[dict], edges: list[dict]) -> WorkflowDefinition:
    trigger = node("start", "trigger", kind="manual")
    return WorkflowDefinition.model_validate({"nodes": [trigger, *nodes], "edges": edges})


def crm_then_done() -> WorkflowDefinition:
    return workflow(
        [
            node(
                "crm",
                "http_request",
                url="http://example.test/crm",
                on_error="pause",
                retry={"max_attempts": 1},
            ),
            node("done", "end", output={"crm": "{{ nodes.crm.output }}"}),
        ],
        [edge("start", "crm"), edge("crm", "done")],
    )


def runner(*outcomes: Callable[[ExecuteNode], object]):
    answers = list(outcomes)

    def run(command: ExecuteNode):
        return answers.pop(0)(command)

    return run


def go_on(sim: Simulation, action: str, by: str = "user:ada") -> None:
    sim.send(ContinueRun(tenant_id="acme", run_id=sim.run_id, action=action, requested_by=by))


def test_a_failure_pauses_the_run_and_names_who_decides():
    sim = Simulation(crm_then_done(), runner=fail_with(BROKEN)).start().run_to_end()
    assert sim.state.status is RunStatus.PAUSED
    assert sim.state.node("crm").status is NodeStatus.FAILED
    assert sim.state.node("done").status is NodeStatus.PENDING
    [paused] = [e for e in sim.log if isinstance(e, RunPaused)]
    assert paused.node_id == "crm" and "500 from the CRM" in paused.reason
    assert paused.notify == {"role": "admin"}
    assert sim.types()[-2:] == ["node.failed", "run.paused"]


def test_retry_runs_the_node_again_and_the_run_completes():
    sim = Simulation(crm_then_done(), runner=runner(fail_with(BROKEN), succeed_with(lambda c: {"id": 7})))
    sim.start().run_to_end()
    go_on(sim, "retry")
    assert sim.state.status is RunStatus.RUNNING and sim.state.node("crm").status is NodeStatus.SCHEDULED
    assert sim.commands[-1].attempt == 2
    sim.run_to_end()
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.final_output == {"crm": {"id": 7}}
    [continued] = [e for e in sim.log if isinstance(e, RunContinued)]
    assert (
        continued.node_ids == ("crm",)
        and continued.action == "retry"
        and continued.requested_by == "user:ada"
    )


def test_skip_passes_the_node_over_with_an_empty_output_and_the_run_goes_on():
    sim = Simulation(crm_then_done(), runner=fail_with(BROKEN)).start().run_to_end()
    go_on(sim, "skip")
    sim.run_to_end()
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("crm").output == {}
    assert sim.state.final_output == {"crm": {}}


def test_a_run_paused_twice_on_a_retried_node_waits_again():
    sim = Simulation(crm_then_done(), runner=fail_with(BROKEN)).start().run_to_end()
    go_on(sim, "retry")
    sim.run_to_end()
    assert sim.state.status is RunStatus.PAUSED
    assert [e.type for e in sim.log].count("run.paused") == 2


def test_only_a_paused_run_goes_on_and_a_paused_run_can_be_cancelled():
    sim = Simulation(crm_then_done(), runner=fail_with(BROKEN)).start().run_to_end()
    before = len(sim.log)
    sim.send(RetryRun(tenant_id="acme", run_id=sim.run_id))
    assert len(sim.log) == before, "retry is for failed runs; a paused run goes on with run.continue"
    sim.send(CancelRun(tenant_id="acme", run_id=sim.run_id))
    assert sim.state.status is RunStatus.CANCELLED
    go_on(sim, "skip")
    assert sim.state.status is RunStatus.CANCELLED


def test_a_paused_run_does_not_time_out_and_gets_a_whole_timeout_when_it_goes_on():
    sim = Simulation(crm_then_done(), runner=fail_with(BROKEN)).start()
    sim.run_to_end()  # with nothing else left, this fires the run's timeout
    assert "timer.fired" in [e.type for e in sim.log]
    assert sim.state.status is RunStatus.PAUSED
    assert not any(t.purpose == "run_timeout" for t in sim.state.timers.values())
    go_on(sim, "retry")
    assert any(t.purpose == "run_timeout" and t.fire_at > sim.now for t in sim.state.timers.values())


def test_a_paused_run_takes_its_other_branches_results_but_starts_nothing_new():
    definition = workflow(
        [
            node("crm", "http_request", url="http://example.test/crm", on_error="pause"),
            node("mail", "http_request", url="http://example.test/mail"),
            node("after_mail", "set", variables={"mailed": True}),
        ],
        [edge("start", "crm"), edge("start", "mail"), edge("mail", "after_mail")],
    )
    sim = Simulation(definition).start()
    crm = next(c for c in sim.commands if c.node_id == "crm")
    mail = next(c for c in sim.commands if c.node_id == "mail")
    sim.commands.clear()
    sim.send(fail_with(NodeError(type="http_status", message="400", retryable=False))(crm))
    assert sim.state.status is RunStatus.PAUSED
    sim.send(succeed_with()(mail))
    assert sim.state.node("mail").status is NodeStatus.SUCCEEDED
    assert sim.state.node("after_mail").status is NodeStatus.PENDING
    go_on(sim, "skip")
    assert sim.state.node("after_mail").status is NodeStatus.SUCCEEDED
    assert sim.state.status is RunStatus.COMPLETED


def test_the_person_who_started_the_run_decides_when_a_person_did():
    sim = Simulation(crm_then_done(), runner=fail_with(BROKEN))
    sim.start()
    # A manual run names who started it; the simulation starts runs as the system, so fold one by hand.
    started = sim.log[0].model_copy(
        update={"trigger": sim.log[0].trigger.model_copy(update={"started_by": "user:ada"})}
    )
    state = evolve(RunState(run_id=sim.run_id, definition=sim.definition), started)
    assert state.trigger is not None and state.trigger.started_by == "user:ada"
    from millrace_orchestrator.domain.decide import decide

    result = fail_with(BROKEN)(sim.commands[0])
    for event in sim.log[1:]:
        state = evolve(state, event)
    decision = decide(state, result, now=sim.now, new_id=uuid4)
    [paused] = [e for e in decision.events if isinstance(e, RunPaused)]
    assert paused.notify == {"user": "user:ada"}


def test_the_log_folds_back_to_the_paused_run_and_projects_an_open_task_then_a_done_one():
    sim = Simulation(crm_then_done(), runner=fail_with(BROKEN)).start().run_to_end()
    folded = RunState(run_id=sim.run_id, definition=sim.definition)
    for event in sim.log:
        folded = evolve(folded, event)
    assert folded.status is RunStatus.PAUSED and folded.paused_nodes == ("crm",)
    writes = project(sim.log)
    task = writes.new_tasks[paused_task_id(sim.run_id, "crm")]
    assert task["status"] == "open" and task["assignee_role"] == "admin" and task["node_id"] == "crm"
    assert writes.new_runs[sim.run_id]["status"] == "paused"
    paused_at = len(sim.log)
    go_on(sim, "skip")
    later = project(sim.log[paused_at:])
    assert later.closed_tasks[paused_task_id(sim.run_id, "crm")]["done_by"] == "user:ada"
    assert later.run_updates[sim.run_id]["status"] == "completed"


def test_for_each_items_that_finish_while_the_run_is_paused_are_advanced_when_it_goes_on():
    body = {**node("line", "http_request", url="http://example.test/{{ item }}"), "parentId": "loop"}
    definition = workflow(
        [
            node("crm", "http_request", url="http://example.test/crm", on_error="pause"),
            node("loop", "for_each", items="{{ trigger.xs }}", max_concurrency=3),
            body,
        ],
        [edge("start", "crm"), edge("start", "loop")],
    )
    sim = Simulation(definition).start({"xs": [1, 2, 3]})
    crm = next(c for c in sim.commands if c.node_id == "crm")
    lines = [c for c in sim.commands if c.node_id.startswith("line")]
    assert len(lines) == 3
    sim.commands.clear()
    sim.send(fail_with(BROKEN)(crm))
    assert sim.state.status is RunStatus.PAUSED
    for command in lines:
        sim.send(succeed_with(lambda c: {"n": c.node_id})(command))
    assert sim.state.node("loop").status is NodeStatus.SCHEDULED
    go_on(sim, "skip")
    assert sim.state.node("loop").status is NodeStatus.SUCCEEDED
    assert sim.state.status is RunStatus.COMPLETED


def test_the_workflow_s_owner_decides_before_the_person_who_started_the_run():
    sim = Simulation(crm_then_done(), runner=fail_with(BROKEN))
    sim.start()
    started = sim.log[0].model_copy(
        update={"trigger": sim.log[0].trigger.model_copy(update={"started_by": "user:ada"})}
    )
    state = evolve(RunState(run_id=sim.run_id, definition=sim.definition, owner="user:olu"), started)
    from millrace_orchestrator.domain.decide import decide

    for event in sim.log[1:]:
        state = evolve(state, event)
    decision = decide(state, fail_with(BROKEN)(sim.commands[0]), now=sim.now, new_id=uuid4)
    [paused] = [e for e in decision.events if isinstance(e, RunPaused)]
    assert paused.notify == {"user": "user:olu"}
    writes = project([*sim.log, *decision.events])
    assert writes.new_tasks[paused_task_id(sim.run_id, "crm")]["assignee_user"] == "user:olu"
