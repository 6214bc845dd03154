"""What a definition says about itself (a description per node, a label per edge), its constants
(``settings.variables``, read as ``workflow.vars.<name>``), the save-time check of ``vars`` and
``workflow.vars`` references, and a scheduled trigger's named schedules (cron or interval)."""

from __future__ import annotations

import pytest
from millrace_common.language.workflow import TriggerConfig, WorkflowDefinition
from millrace_common.language.workflow_validation import validate_definition
from pydantic import ValidationError

from tests.unit.workflow_examples import edge, node

pytestmark = pytest.mark.unit


def with_set_and_end(end_output: dict, **settings: object) -> dict:
    definition: dict = {
        "nodes": [
            node("start", "trigger", name="Start", kind="manual"),
            node("greet", "set", name="Greet", variables={"greeting": "hello"}),
            node("done", "end", name="Done", output=end_output),
        ],
        "edges": [edge("start", "greet"), edge("greet", "done")],
    }
    if settings:
        definition["settings"] = settings
    return definition


def problems(definition: dict) -> list[tuple[str, str]]:
    return [(p.pointer, p.message) for p in validate_definition(definition).problems]


def test_a_node_description_and_an_edge_label_are_kept_in_the_definition():
    raw = with_set_and_end({"x": 1})
    raw["nodes"][1]["description"] = "Says hello before the end"
    raw["edges"][1]["label"] = "always"
    parsed = WorkflowDefinition.model_validate(raw)
    assert parsed.node("greet").description == "Says hello before the end"
    assert parsed.outgoing("greet")[0].label == "always"
    stored = parsed.model_dump(mode="json", by_alias=True)
    assert stored["nodes"][1]["description"] == "Says hello before the end"
    assert stored["edges"][1]["label"] == "always"
    assert WorkflowDefinition.model_validate(stored) == parsed


def test_descriptions_and_labels_are_never_rendered_so_braces_in_them_are_text():
    raw = with_set_and_end({"x": 1})
    raw["nodes"][2]["description"] = "Ends with {{ nodes.nowhere.output }}"
    raw["edges"][0]["label"] = "{{ broken"
    assert problems(raw) == []


def test_an_overlong_node_description_is_refused_with_its_pointer():
    raw = with_set_and_end({"x": 1})
    raw["nodes"][1]["description"] = "x" * 2001
    [(pointer, message)] = problems(raw)
    assert pointer == "/nodes/1/description"
    assert "2000" in message


def test_workflow_constants_are_declared_in_settings_and_read_as_workflow_vars():
    raw = with_set_and_end({"region": "{{ workflow.vars.region }}"}, variables={"region": "eu", "limit": 3})
    assert problems(raw) == []
    parsed = WorkflowDefinition.model_validate(raw)
    assert parsed.settings.variables == {"region": "eu", "limit": 3}


def test_a_workflow_variable_that_is_not_declared_is_refused_at_save():
    raw = with_set_and_end({"region": "{{ workflow.vars.regoin }}"}, variables={"region": "eu"})
    assert problems(raw) == [
        (
            "/nodes/2/data/output/region",
            (
                "template refers to workflow variable 'regoin', which settings.variables does not declare "
                "(declared: region)"
            ),
        )
    ]


def test_a_workflow_variable_name_must_be_an_identifier():
    raw = with_set_and_end({"x": 1}, variables={"not a name": 1})
    [(pointer, _)] = problems(raw)
    assert pointer.startswith("/settings/variables")


def test_workflow_has_only_id_version_and_vars():
    raw = with_set_and_end({"x": "{{ workflow.name }}"})
    assert problems(raw) == [
        (
            "/nodes/2/data/output/x",
            "template refers to workflow.name, which is not defined; workflow has id, version and vars",
        )
    ]


def test_a_run_variable_must_be_set_by_a_set_node_that_can_have_run_before():
    assert problems(with_set_and_end({"g": "{{ vars.greeting }}"})) == []
    assert problems(with_set_and_end({"g": "{{ vars.greting }}"})) == [
        (
            "/nodes/2/data/output/g",
            (
                "template refers to variable 'greting', which no set node before this node sets "
                "(a workflow constant is workflow.vars.greting)"
            ),
        )
    ]


def test_a_variable_set_after_the_reader_is_refused_in_conditions_too():
    raw = {
        "nodes": [
            node("start", "trigger", name="Start", kind="manual"),
            node(
                "check", "condition", name="Check", condition={"field": "vars.n", "operator": "is_not_empty"}
            ),
            node("count", "set", name="Count", variables={"n": 1}),
            node("done", "end", name="Done"),
        ],
        "edges": [
            edge("start", "check"),
            edge("check", "count", "true"),
            edge("check", "done", "false"),
            edge("count", "done"),
        ],
    }
    [(pointer, message)] = problems(raw)
    assert pointer == "/nodes/1/data/condition"
    assert "variable 'n', which no set node before this node sets" in message


def test_a_variable_set_inside_a_loop_body_is_known_after_the_loop():
    raw = {
        "nodes": [
            node("start", "trigger", name="Start", kind="manual"),
            node("loop", "for_each", name="Loop", items="{{ [1, 2] }}"),
            node("keep", "set", name="Keep", parent="loop", variables={"last": "{{ item }}"}),
            node("done", "end", name="Done", output={"last": "{{ vars.last }}"}),
        ],
        "edges": [edge("start", "loop"), edge("loop", "done")],
    }
    assert problems(raw) == []


def test_the_trigger_conditions_cannot_read_workflow_constants():
    raw = with_set_and_end({"x": 1}, variables={"region": "eu"})
    raw["nodes"][0]["data"] = {
        "name": "Start",
        "kind": "webhook",
        "conditions": {"field": "trigger.webhook.body.region", "operator": "equals", "value": "x"},
    }
    assert problems(raw) == []
    raw["nodes"][0]["data"]["conditions"]["field"] = "workflow.vars.region"
    [(pointer, message)] = problems(raw)
    assert pointer == "/nodes/0/data/conditions"
    assert "the trigger's conditions cannot read" in message


# -- named schedules --------------------------------------------------------------------------------


def trigger(**data: object) -> TriggerConfig:
    return TriggerConfig.model_validate({"name": "T", "kind": "scheduled", **data})


def refusal(**data: object) -> str:
    with pytest.raises(ValidationError) as caught:
        trigger(**data)
    return str(caught.value)


def test_a_trigger_has_several_named_schedules_cron_or_interval():
    config = trigger(
        schedules=[
            {"name": "weekdays", "cron": "0 9 * * MON-FRI", "timezone": "Europe/Paris"},
            {"name": "poll", "every": 90, "unit": "seconds", "missed_slot_policy": "skip"},
        ]
    )
    weekdays, poll = config.schedule_list()
    assert (weekdays.kind, weekdays.timezone) == ("cron", "Europe/Paris")
    assert (poll.kind, poll.interval_seconds, poll.missed_slot_policy) == ("interval", 90, "skip")


def test_a_definition_with_one_top_level_cron_stays_valid_as_one_schedule():
    [legacy] = trigger(cron="@daily", timezone="Asia/Tokyo", missed_slot_policy="skip").schedule_list()
    assert (legacy.name, legacy.cron, legacy.timezone, legacy.missed_slot_policy) == (
        "default",
        "@daily",
        "Asia/Tokyo",
        "skip",
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ({}, 'a "scheduled" trigger needs schedules'),
        ({"cron": "@daily", "schedules": [{"name": "a", "every": 1}]}, "not both"),
        ({"schedules": [{"name": "a", "every": 1}, {"name": "a", "cron": "@daily"}]}, "'a' repeats"),
        ({"schedules": [{"name": "a"}]}, "schedule 'a' has exactly one of cron and every"),
        ({"schedules": [{"name": "a", "every": 5, "cron": "@daily"}]}, "exactly one of cron and every"),
        ({"schedules": [{"name": "a", "every": 0}]}, "greater than or equal to 1"),
        ({"schedules": [{"name": "a", "every": 1000, "unit": "hours"}]}, "less often than every 31 days"),
        ({"schedules": [{"name": "a", "every": 1, "unit": "days"}]}, "'seconds', 'minutes' or 'hours'"),
        ({"schedules": [{"name": "a", "cron": "61 * * * *"}]}, "cron minute field"),
        ({"schedules": [{"name": "a", "every": 1, "timezone": "Mars/Base"}]}, "not an IANA time zone"),
        ({"schedules": [{"name": "with space", "every": 1}]}, "String should match pattern"),
    ],
)
def test_bad_schedules_are_refused_with_the_reason(data, reason):
    assert reason in refusal(**data)


def test_only_a_scheduled_trigger_has_schedules():
    with pytest.raises(ValidationError, match='schedules only apply to "scheduled" triggers'):
        TriggerConfig.model_validate(
            {"name": "T", "kind": "manual", "schedules": [{"name": "a", "every": 1}]}
        )


def test_a_stored_definition_saved_before_the_variable_checks_still_loads():
    stored = with_set_and_end({"g": "{{ vars.never_set }}", "w": "{{ workflow.vars.undeclared }}"})
    assert len(problems(stored)) == 2
    loaded = WorkflowDefinition.model_validate(stored)
    assert loaded.node("done").data.output == {
        "g": "{{ vars.never_set }}",
        "w": "{{ workflow.vars.undeclared }}",
    }


def test_a_run_renders_workflow_constants_into_its_nodes():
    from millrace_common.contracts.messages.run_events import RunStatus

    from tests.unit.run_simulation import Simulation

    raw = with_set_and_end(
        {"limit": "{{ workflow.vars.limit }}", "text": "for {{ workflow.vars.region }}: {{ vars.greeting }}"},
        variables={"region": "eu", "limit": 3},
    )
    assert problems(raw) == []
    sim = Simulation(WorkflowDefinition.model_validate(raw)).start({})
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("done").output == {"limit": 3, "text": "for eu: hello"}
