"""for_each in the orchestrator's pure core: bounded concurrency, results in item order, the three
failure policies, item and index in templates. (The cost per item is measured in bench/.)"""

from __future__ import annotations

import pytest
from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.state import NodeStatus, RunStatus

from tests.unit.run_simulation import Simulation, fail_with, succeed_with

pytestmark = pytest.mark.unit


def loop_workflow(body: list[dict], body_edges: list[dict] | None = None, **loop) -> WorkflowDefinition:
    nodes = [
        {"id": "start", "type": "trigger", "data": {"name": "start", "kind": "manual"}},
        {"id": "each", "type": "for_each", "data": {"name": "each", "items": "{{ trigger.items }}", **loop}},
        *({**n, "parentId": "each"} for n in body),
        {
            "id": "done",
            "type": "end",
            "data": {"name": "done", "output": {"all": "{{ nodes.each.output.results }}"}},
        },
    ]
    edges = [
        {"id": "a", "source": "start", "target": "each"},
        {"id": "b", "source": "each", "target": "done", "sourceHandle": "done"},
        *(body_edges or []),
    ]
    return WorkflowDefinition.model_validate({"nodes": nodes, "edges": edges, "settings": {"retry_count": 0}})


def double_body() -> list[dict]:
    return [
        {
            "id": "double",
            "type": "set",
            "data": {"name": "double", "variables": {"value": "{{ item * 2 }}", "at": "{{ index }}"}},
        }
    ]


def test_a_trivial_body_runs_once_per_item_and_collects_results_in_item_order():
    sim = Simulation(loop_workflow(double_body(), max_concurrency=3)).start({"items": [5, 1, 4]}).run_to_end()
    assert sim.state.status is RunStatus.COMPLETED
    results = sim.state.node("each").output["results"]
    assert results == [{"value": 10, "at": 0}, {"value": 2, "at": 1}, {"value": 8, "at": 2}]
    assert sim.state.node("done").output == {"all": results}
    assert sim.state.node("double[1]").status is NodeStatus.SUCCEEDED


def test_no_more_than_max_concurrency_items_are_in_flight_and_results_keep_item_order():
    body = [
        {
            "id": "call",
            "type": "http_request",
            "data": {"name": "call", "url": "http://example.test/{{ item }}"},
        }
    ]
    sim = Simulation(
        loop_workflow(body, max_concurrency=2), runner=succeed_with(lambda c: {"url": c.input["url"]})
    ).start({"items": ["a", "b", "c", "d", "e"]})
    assert [c.node_id for c in sim.commands] == ["call[0]", "call[1]"]
    # Answer out of order: the second item first.
    sim.send(succeed_with(lambda c: {"url": c.input["url"]})(sim.commands.pop(1)))
    assert [c.node_id for c in sim.commands] == ["call[0]", "call[2]"]
    sim.run_to_end()
    urls = [r["url"] for r in sim.state.node("each").output["results"]]
    assert urls == [f"http://example.test/{x}" for x in "abcde"]


def body_failing_on(bad: set[int]) -> tuple[list[dict], object]:
    body = [
        {
            "id": "call",
            "type": "http_request",
            "data": {"name": "call", "url": "http://example.test/{{ index }}"},
        }
    ]

    def runner(command):
        index = int(command.node_id.split("[")[1].rstrip("]"))
        if index in bad:
            return fail_with(NodeError(type="http_status", message=f"no {index}", retryable=False))(command)
        return succeed_with(lambda c: {"i": index})(command)

    return body, runner


def test_the_fail_policy_fails_the_loop_and_the_run_on_the_first_failed_item():
    body, runner = body_failing_on({1})
    sim = (
        Simulation(loop_workflow(body, max_concurrency=1, failure_policy="fail"), runner=runner)
        .start({"items": [0, 1, 2, 3]})
        .run_to_end()
    )
    assert sim.state.status is RunStatus.FAILED
    assert "item 1 failed: no 1" in sim.state.node("each").error.message
    assert "call[2]" not in sim.state.nodes


def test_the_skip_policy_leaves_failed_items_out():
    body, runner = body_failing_on({1, 3})
    sim = (
        Simulation(loop_workflow(body, failure_policy="skip"), runner=runner)
        .start({"items": [0, 1, 2, 3]})
        .run_to_end()
    )
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("each").output["results"] == [{"i": 0}, {"i": 2}]
    assert sim.state.node("each").output["failed"] == 2


def test_the_collect_policy_keeps_errors_in_their_places():
    body, runner = body_failing_on({1})
    sim = (
        Simulation(loop_workflow(body, failure_policy="collect"), runner=runner)
        .start({"items": [0, 1, 2]})
        .run_to_end()
    )
    results = sim.state.node("each").output["results"]
    assert results[0] == {"i": 0} and results[2] == {"i": 2}
    assert results[1]["error"]["message"] == "no 1"


def test_an_empty_list_completes_the_loop_at_once_and_a_non_list_fails_it():
    sim = Simulation(loop_workflow(double_body())).start({"items": []}).run_to_end()
    assert sim.state.node("each").output["results"] == [] and sim.state.status is RunStatus.COMPLETED
    sim = Simulation(loop_workflow(double_body())).start({"items": "nope"}).run_to_end()
    assert sim.state.status is RunStatus.FAILED and "not a list" in sim.state.node("each").error.message
