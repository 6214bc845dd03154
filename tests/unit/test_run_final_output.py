"""A run's final output (``RunCompleted.final_output``): the output of the top-level end node that
finished last, decided by the pure core and projected onto the ``runs`` row."""

from __future__ import annotations

import pytest
from millrace_common.contracts.messages.run_events import RunCompleted
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.projection import project
from millrace_orchestrator.domain.state import RunStatus

from tests.unit.run_simulation import Simulation

pytestmark = pytest.mark.unit


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def workflow(nodes: list[dict], edges: list[dict]) -> WorkflowDefinition:
    trigger = node("start", "trigger", kind="manual")
    return WorkflowDefinition.model_validate({"nodes": [trigger, *nodes], "edges": edges})


def completed(sim: Simulation) -> RunCompleted:
    endings = [e for e in sim.log if isinstance(e, RunCompleted)]
    assert len(endings) == 1
    return endings[0]


def test_the_run_completes_with_the_rendered_output_of_its_end_node():
    definition = workflow(
        [node("done", "end", output={"total": "{{ trigger.qty * 2 }}", "note": "ok"})],
        [edge("start", "done")],
    )
    sim = Simulation(definition).start({"qty": 21}).run_to_end()
    assert sim.state.status is RunStatus.COMPLETED
    assert completed(sim).final_output == {"total": 42, "note": "ok"}
    assert sim.state.final_output == {"total": 42, "note": "ok"}


def test_of_two_end_nodes_the_one_that_finished_last_gives_the_output():
    definition = workflow(
        [
            node("fast", "end", output={"from": "fast"}),
            node("call", "http_request", url="http://example.test/slow"),
            node("slow", "end", output={"from": "slow"}),
        ],
        [edge("start", "fast"), edge("start", "call"), edge("call", "slow")],
    )
    sim = Simulation(definition).start().run_to_end()
    assert completed(sim).final_output == {"from": "slow"}


def test_a_run_without_an_end_node_has_no_final_output_and_a_body_end_is_not_the_runs():
    loop_body = {**node("each", "end", output={"x": "{{ item }}"}), "parentId": "loop"}
    definition = workflow(
        [node("loop", "for_each", items="{{ trigger.xs }}"), loop_body],
        [edge("start", "loop")],
    )
    sim = Simulation(definition).start({"xs": [1, 2]}).run_to_end()
    assert sim.state.status is RunStatus.COMPLETED
    assert completed(sim).final_output is None
    assert sim.state.node("loop").output["results"] == [{"x": 1}, {"x": 2}]


def test_the_runs_row_keeps_the_final_output_whether_it_started_in_the_same_batch_or_before():
    definition = workflow([node("done", "end", output={"ok": True})], [edge("start", "done")])
    sim = Simulation(definition).start().run_to_end()
    whole = project(sim.log)
    assert whole.new_runs[sim.run_id]["final_output"] == {"ok": True}
    started = next(i for i, e in enumerate(sim.log) if e.type == "run.started")
    later = project(sim.log[started + 1 :])
    assert later.run_updates[sim.run_id]["final_output"] == {"ok": True}
    assert later.run_updates[sim.run_id]["status"] == "completed"
