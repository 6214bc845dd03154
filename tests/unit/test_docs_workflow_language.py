"""The docs hold the workflow language's newer parts as the code has them: every field of a schedule,
of the workflow settings, of a node and of an edge in docs/node-reference.md; schedules in
docs/triggers.md; the reference checks' messages in docs/templates-and-conditions.md, as validation
words them; and the workflow API's description, owner and schedule fields in docs/api.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from millrace_common.language.workflow import Edge, Schedule, WorkflowSettings, _NodeBase
from millrace_common.language.workflow_validation import validate_definition
from millrace_gateway.entrypoints.http.workflows import ScheduleOut, WorkflowOut

from tests.unit.workflow_examples import edge, node

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parents[2] / "docs"


def table_fields(text: str, heading: str) -> set[str]:
    """The first column of the first table after ``heading``."""
    after = text[text.index(heading) :]
    table = re.search(r"\n(\|.*\|\n)+", after)
    assert table is not None, heading
    return set(re.findall(r"^\| `([a-z_]+)` \|", table.group(0), flags=re.MULTILINE))


def aliases(model: type) -> set[str]:
    return {field.alias or name for name, field in model.model_fields.items()}


def test_every_field_of_a_schedule_is_in_the_schedule_table_of_the_node_reference():
    text = (DOCS / "node-reference.md").read_text()
    assert table_fields(text, "A schedule in `schedules`:") == aliases(Schedule)


def test_every_workflow_setting_is_in_the_node_reference():
    text = (DOCS / "node-reference.md").read_text()
    assert table_fields(text, "## Workflow settings") == aliases(WorkflowSettings)


def test_every_field_of_a_node_and_of_an_edge_is_in_the_definition_table():
    text = (DOCS / "node-reference.md").read_text()
    rows = dict(re.findall(r"^\| (node|edge) \| (.*) \|$", text, flags=re.MULTILINE))
    node_fields = aliases(_NodeBase) | {"type", "data"}
    assert node_fields <= set(re.findall(r"`([A-Za-z_]+)`", rows["node"]))
    assert aliases(Edge) <= set(re.findall(r"`([A-Za-z_]+)`", rows["edge"]))


def test_the_triggers_guide_describes_named_schedules_and_intervals():
    text = (DOCS / "triggers.md").read_text()
    for words in ('"schedules"', '"every"', '"unit"', "named `default`", "Unix epoch", "run_count"):
        assert words in text or words.strip('"') in text, words


def validation_messages() -> list[str]:
    definition = {
        "nodes": [
            node("start", "trigger", name="Start", kind="manual"),
            node("done", "end", name="Done", output={"a": "{{ vars.x }}", "b": "{{ workflow.vars.y }}"}),
        ],
        "edges": [edge("start", "done")],
        "settings": {"variables": {"z": 1}},
    }
    return [p.message for p in validate_definition(definition).problems]


def test_the_templates_guide_words_the_reference_checks_as_validation_does():
    text = (DOCS / "templates-and-conditions.md").read_text()
    unset, undeclared = validation_messages()
    assert unset.startswith("template refers to variable 'x', which no set node before this node sets")
    assert undeclared.startswith(
        "template refers to workflow variable 'y', which settings.variables does not"
    )
    assert "*template refers to variable 'x', which no set node before this node sets*" in text
    assert "*template refers to workflow variable 'x', which settings.variables does not declare" in text
    reference = (DOCS / "node-reference.md").read_text()
    assert "which no set node before this node sets" in reference
    assert "which settings.variables does not declare" in reference


def test_the_api_guide_has_the_workflow_description_owner_and_schedule_fields():
    text = (DOCS / "api.md").read_text()
    for name in (
        "description",
        "created_by",
        "created_by_name",
        "updated_by",
        "updated_by_name",
        "schedules",
    ):
        assert name in WorkflowOut.model_fields
        assert f"`{name}`" in text, name
    for name in ScheduleOut.model_fields:
        assert f"`{name}`" in text, name
