"""The workflows a definition names (sub_workflow nodes, agents' workflow tools, the error workflow)
and the rule they follow at save; a manual run's input against the trigger's input_schema. Pure."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.language.input_schema import check_input_schema, input_problems
from millrace_common.language.workflow import WorkflowDefinition
from millrace_gateway.domain.refusals import InputMismatch, InvalidDefinition
from millrace_gateway.domain.runs import refuse_mismatched_input
from millrace_gateway.domain.workflow_links import LinkedWorkflow, refuse_broken_links, workflow_links

pytestmark = pytest.mark.unit

OWN = UUID(int=1)
OTHER = UUID(int=2)


def definition(
    *targets: tuple[UUID, int | None], error_workflow: UUID | None = None, schema=None
) -> WorkflowDefinition:
    trigger = {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}}
    if schema is not None:
        trigger["data"]["input_schema"] = schema
    calls = [
        {
            "id": f"call{i}",
            "type": "sub_workflow",
            "data": {"name": f"c{i}", "workflow_id": str(w), "version": v},
        }
        for i, (w, v) in enumerate(targets)
    ]
    edges = [{"id": f"e{i}", "source": "start", "target": f"call{i}"} for i in range(len(calls))]
    settings = {"error_workflow_id": str(error_workflow)} if error_workflow else {}
    return WorkflowDefinition.model_validate(
        {"nodes": [trigger, *calls], "edges": edges, "settings": settings}
    )


def problems(
    d: WorkflowDefinition, found: dict[UUID, LinkedWorkflow], own: UUID | None = OWN
) -> list[tuple[str, str]]:
    try:
        refuse_broken_links(workflow_links(d), found, own_id=own, own_next_version=3)
    except InvalidDefinition as refused:
        return [(p.pointer, p.detail) for p in refused.problems]
    return []


def test_a_definition_names_its_sub_workflows_and_its_error_workflow_with_their_pointers():
    links = workflow_links(definition((OTHER, 2), (OWN, None), error_workflow=OTHER))
    assert [(link.pointer, link.workflow_id, link.version) for link in links] == [
        ("/definition/nodes/1/data/workflow_id", OTHER, 2),
        ("/definition/nodes/2/data/workflow_id", OWN, None),
        ("/definition/settings/error_workflow_id", OTHER, None),
    ]


def test_an_agents_workflow_tools_are_links_and_a_missing_one_is_refused_with_its_pointer():
    missing = UUID(int=9)
    tools = [
        {"kind": "records", "pipelines": ["deals"]},
        {"kind": "workflow", "name": "score", "description": "Score a lead", "workflow_id": str(OTHER)},
        {
            "kind": "workflow",
            "name": "gone",
            "description": "Gone",
            "workflow_id": str(missing),
            "version": 2,
        },
    ]
    agent = {"id": "agent", "type": "ai_agent", "data": {"name": "a", "task": "t", "tools": tools}}
    trigger = {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}}
    d = WorkflowDefinition.model_validate(
        {"nodes": [trigger, agent], "edges": [{"id": "e", "source": "start", "target": "agent"}]}
    )
    assert [(link.pointer, link.workflow_id, link.version) for link in workflow_links(d)] == [
        ("/definition/nodes/1/data/tools/1/workflow_id", OTHER, None),
        ("/definition/nodes/1/data/tools/2/workflow_id", missing, 2),
    ]
    found = {OTHER: LinkedWorkflow(latest_version=1, status="active")}
    assert [pointer for pointer, _ in problems(d, found)] == ["/definition/nodes/1/data/tools/2/workflow_id"]


def test_links_to_existing_workflows_and_to_itself_pass():
    found = {OTHER: LinkedWorkflow(latest_version=2, status="active")}
    assert problems(definition((OTHER, 2), (OWN, 3), (OWN, None), error_workflow=OTHER), found) == []


def test_a_missing_foreign_or_archived_workflow_a_missing_version_and_itself_as_error_workflow_are_refused():
    archived = uuid4()
    found = {OTHER: LinkedWorkflow(1, "draft"), archived: LinkedWorkflow(1, "archived")}
    missing = uuid4()
    refused = problems(
        definition((missing, None), (OTHER, 2), (archived, None), (OWN, 4), error_workflow=OWN), found
    )
    assert refused == [
        ("/definition/nodes/1/data/workflow_id", f"no workflow {missing} in this tenant"),
        ("/definition/nodes/2/data/workflow_id", f"workflow {OTHER} has no version 2"),
        ("/definition/nodes/3/data/workflow_id", f"workflow {archived} is archived"),
        ("/definition/nodes/4/data/workflow_id", "this workflow has no version 4"),
        ("/definition/settings/error_workflow_id", "a workflow cannot be its own error workflow"),
    ]


def test_an_input_schema_that_is_not_a_schema_is_refused_and_a_run_input_is_checked_with_pointers():
    with pytest.raises(ValueError, match="not a valid JSON Schema"):
        check_input_schema({"type": "integer", "minimum": "zero"})
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "a/b": {"type": "string"}},
        "required": ["n"],
    }
    d = definition(schema=schema)
    refuse_mismatched_input(d, {"n": 1})
    with pytest.raises(InputMismatch) as refused:
        refuse_mismatched_input(d, {"n": "x", "a/b": 3})
    assert sorted(p.pointer for p in refused.value.problems) == ["/body/input/a~1b", "/body/input/n"]
    refuse_mismatched_input(definition(), {"anything": True})


# Keys are not empty: jsonschema-rs reports a problem under the key "" at the root ("", not "/").
@given(st.dictionaries(st.text(min_size=1, max_size=5), st.integers() | st.text(max_size=5), max_size=5))
def test_an_input_matches_its_schema_exactly_when_no_problem_is_reported(data):
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    reported = input_problems(schema, data)
    wrong = {key for key, value in data.items() if not isinstance(value, int)}
    assert {p.pointer for p in reported} == {"/" + k.replace("~", "~0").replace("/", "~1") for k in wrong}


def test_a_key_made_of_digits_is_pointed_at_as_written():
    # jsonschema-rs reports the key "00" as the number 0; the pointer names the key the caller sent.
    schema = {"type": "object", "additionalProperties": {"type": "integer"}}
    assert [p.pointer for p in input_problems(schema, {"00": "x", "+1": "y"})] == ["/00", "/+1"]
    assert sorted(p.pointer for p in input_problems(schema, {"0": "x", "00": "y", "1": 2})) == ["/0", "/00"]
    listed = {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "integer"}}}
    assert [p.pointer for p in input_problems(listed, [{"007": "x"}])] == ["/0/007"]
