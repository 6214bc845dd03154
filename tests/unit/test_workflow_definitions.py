"""Workflow definitions: React Flow JSON in, typed graph out, unsound graphs refused with reasons."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from millrace_common.workflow import WorkflowDefinition

pytestmark = pytest.mark.unit


def definition(nodes, edges):
    return {"nodes": nodes, "edges": edges}


TRIGGER = {"id": "t", "type": "trigger", "position": {"x": 0, "y": 0}, "data": {"name": "T", "kind": "manual"}}
END = {"id": "e", "type": "end", "data": {"name": "E"}}


def test_a_react_flow_definition_round_trips_with_its_aliases():
    raw = definition([TRIGGER, END], [{"id": "x", "source": "t", "target": "e", "sourceHandle": None}])
    parsed = WorkflowDefinition.model_validate(raw)
    assert parsed.trigger.id == "t"
    assert parsed.outgoing("t")[0].target == "e"
    dumped = parsed.model_dump(mode="json", by_alias=True)
    assert dumped["edges"][0]["sourceHandle"] is None
    assert WorkflowDefinition.model_validate(dumped) == parsed


@pytest.mark.parametrize(
    ("nodes", "edges", "reason"),
    [
        ([TRIGGER, END, END], [], "duplicate node ids: e"),
        ([TRIGGER, END], [{"id": "x", "source": "t", "target": "nowhere"}], "unknown node 'nowhere'"),
        ([END], [], "exactly one trigger"),
        (
            [TRIGGER, END, {**END, "id": "f"}],
            [{"id": "1", "source": "e", "target": "f"}, {"id": "2", "source": "f", "target": "e"}],
            "cycle",
        ),
    ],
)
def test_unsound_graphs_are_refused_with_the_reason(nodes, edges, reason):
    with pytest.raises(ValidationError, match=reason):
        WorkflowDefinition.model_validate(definition(nodes, edges))
