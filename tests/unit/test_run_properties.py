"""Properties of the orchestrator's core over random valid DAGs with branches and joins: every node
ends executed exactly once or skipped, no join waits forever, and folding the log again from the
start gives the same state."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from millrace_common.messages.node_commands import NodeError
from millrace_common.workflow import WorkflowDefinition
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, evolve
from tests.unit.run_simulation import Simulation, fail_with, succeed_with

pytestmark = pytest.mark.unit


@st.composite
def dags(draw: st.DrawFn) -> WorkflowDefinition:
    count = draw(st.integers(min_value=1, max_value=14))
    kinds = draw(st.lists(st.sampled_from(["http_request", "set", "condition"]), min_size=count, max_size=count))
    nodes = [{"id": "n0", "type": "trigger", "data": {"name": "start", "kind": "manual"}}]
    for index, kind in enumerate(kinds, start=1):
        data: dict = {"name": f"n{index}"}
        if kind == "http_request":
            data.update(url=f"http://example.test/{index}", on_error=draw(st.sampled_from(["fail_run", "error_edge"])))
        elif kind == "set":
            data["variables"] = {f"v{index}": index}
        else:
            data["condition"] = {"field": "trigger.x", "operator": "greater_than", "value": draw(st.integers(0, 10))}
        nodes.append({"id": f"n{index}", "type": kind, "data": data})
    edges = []
    for target in range(1, count + 1):
        sources = draw(st.sets(st.integers(0, target - 1), min_size=1, max_size=min(3, target)))
        for source in sorted(sources):
            source_type = nodes[source]["type"]
            handle = None
            if source_type == "condition":
                handle = draw(st.sampled_from(["true", "false"]))
            elif nodes[source]["data"].get("on_error") == "error_edge":
                handle = draw(st.sampled_from([None, None, "error"]))
            edges.append({"id": f"e{source}-{target}", "source": f"n{source}", "target": f"n{target}", "sourceHandle": handle})
    return WorkflowDefinition.model_validate({"nodes": nodes, "edges": edges, "settings": {"retry_count": 0}})


@given(definition=dags(), x=st.integers(0, 10), failing=st.sets(st.integers(1, 14), max_size=3))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_every_node_settles_exactly_once_and_the_log_folds_to_the_same_state(definition, x, failing):
    def runner(command):
        if int(command.node_id[1:]) in failing:
            return fail_with(NodeError(type="http_status", message="400", retryable=False))(command)
        return succeed_with()(command)

    sim = Simulation(definition, runner=runner).start({"x": x}).run_to_end()

    assert sim.state.status in (RunStatus.COMPLETED, RunStatus.FAILED)
    settled = Counter(e.node_id for e in sim.log if e.type in ("node.succeeded", "node.failed", "node.skipped"))
    assert all(count == 1 for count in settled.values())
    if sim.state.status is RunStatus.COMPLETED:
        assert set(settled) == {n.id for n in definition.nodes}
        assert all(
            sim.state.node(n.id).status in (NodeStatus.SUCCEEDED, NodeStatus.SKIPPED, NodeStatus.FAILED) for n in definition.nodes
        )
    assert [e.seq for e in sim.log] == list(range(1, len(sim.log) + 1))

    refolded = RunState(run_id=sim.run_id, definition=definition)
    for event in sim.log:
        refolded = evolve(refolded, event)
    assert refolded == sim.state
