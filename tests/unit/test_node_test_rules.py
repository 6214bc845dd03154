"""Testing a node without a run (the gateway's ``domain.node_tests``): the context a test runs in,
control nodes evaluated as a run would, and the nodes a test refuses."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.language.workflow import WorkflowDefinition
from millrace_gateway.domain.node_tests import (
    NotTestable,
    SideEffects,
    context_for_test,
    evaluate_in_place,
    refuse_untestable,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
WORKFLOW = UUID(int=7)


def definition() -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "nodes": [
                {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
                {
                    "id": "calc",
                    "type": "code",
                    "data": {"name": "Calc", "code": "def main():\n    return 1\n"},
                },
                {
                    "id": "big",
                    "type": "condition",
                    "data": {
                        "name": "Big?",
                        "condition": {
                            "field": "nodes.calc.output.total",
                            "operator": "greater_than",
                            "value": 10,
                        },
                    },
                },
                {
                    "id": "route",
                    "type": "switch",
                    "data": {
                        "name": "Route",
                        "cases": [
                            {
                                "name": "vip",
                                "condition": {"field": "trigger.tier", "operator": "equals", "value": "vip"},
                            }
                        ],
                    },
                },
                {
                    "id": "keep",
                    "type": "set",
                    "data": {"name": "Keep", "variables": {"who": "{{ trigger.name }}"}},
                },
                {
                    "id": "call",
                    "type": "http_request",
                    "data": {"name": "Call", "url": "https://x.test/{{ trigger.name }}"},
                },
                {
                    "id": "ask",
                    "type": "approval",
                    "data": {"name": "Ask", "assignee": {"role": "boss"}, "title": "ok?"},
                },
            ],
            "edges": [
                {"id": "e1", "source": "start", "target": "calc"},
                {"id": "e2", "source": "calc", "target": "big"},
                {"id": "e3", "source": "big", "target": "route", "sourceHandle": "true"},
                {"id": "e4", "source": "route", "target": "keep", "sourceHandle": "default"},
                {"id": "e5", "source": "keep", "target": "call"},
                {"id": "e6", "source": "call", "target": "ask"},
            ],
        }
    )


def evaluated(node_id: str, given: dict, pins: dict | None = None):
    flow = definition()
    node = flow.node(node_id)
    context = context_for_test(flow, WORKFLOW, node, given, pins or {})
    return evaluate_in_place(node, context, now=NOW, new_id=uuid4)


def test_the_pins_fill_the_context_and_what_is_given_wins():
    flow = definition()
    pins = {"start": {"name": "Ada"}, "calc": {"total": 3}, "big": {"result": False}}
    context = context_for_test(
        flow, WORKFLOW, flow.node("big"), {"nodes": {"calc": {"output": {"total": 20}}}}, pins
    )
    assert context["trigger"] == {"name": "Ada"}
    assert context["nodes"] == {"calc": {"output": {"total": 20}}}
    assert context["workflow"] == {"id": str(WORKFLOW), "version": None, "vars": {}}


def test_a_condition_answers_its_result_and_the_handle_a_run_would_take():
    result = evaluated("big", {}, {"calc": {"total": 11}})
    assert (result.status, result.output, result.handle) == ("succeeded", {"result": True}, "true")
    assert evaluated("big", {}, {"calc": {"total": 1}}).handle == "false"


@given(st.sampled_from(["vip", "basic", ""]))
def test_a_switch_takes_the_first_case_that_holds_else_default(tier):
    result = evaluated("route", {"trigger": {"tier": tier}})
    assert result.output == {"case": "vip" if tier == "vip" else None}
    assert result.handle == ("case:vip" if tier == "vip" else "default")


def test_a_set_node_renders_its_variables_and_a_bad_template_is_the_nodes_error():
    assert evaluated("keep", {"trigger": {"name": "Ada"}}).output == {"who": "Ada"}
    failed = evaluated("keep", {"trigger": {}})
    assert failed.status == "failed" and failed.error["type"] == "template"


def test_side_effects_need_the_flag_and_triggers_and_approvals_cannot_be_tested():
    flow = definition()
    with pytest.raises(SideEffects):
        refuse_untestable(flow.node("call"), execute_side_effects=False)
    refuse_untestable(flow.node("call"), execute_side_effects=True)
    refuse_untestable(flow.node("calc"), execute_side_effects=False)
    for node_id in ("start", "ask"):
        with pytest.raises(NotTestable):
            refuse_untestable(flow.node(node_id), execute_side_effects=True)


def test_an_agent_cannot_be_tested_alone_and_is_told_to_use_a_test_run():
    agent = WorkflowDefinition.model_validate(
        {
            "nodes": [
                {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
                {"id": "agent", "type": "ai_agent", "data": {"name": "Agent", "task": "Do it"}},
            ],
            "edges": [{"id": "e", "source": "start", "target": "agent"}],
        }
    ).node("agent")
    with pytest.raises(NotTestable, match="start a test run"):
        refuse_untestable(agent, execute_side_effects=True)


def test_an_input_piece_outside_the_context_is_refused():
    flow = definition()
    with pytest.raises(NotTestable):
        context_for_test(flow, WORKFLOW, flow.node("big"), {"secrets": {}}, {})


def test_a_runner_is_sent_the_config_rendered_as_a_run_sends_it_and_code_gets_the_context():
    flow = definition()
    context = context_for_test(flow, WORKFLOW, flow.node("call"), {"trigger": {"name": "ada"}}, {})
    sent = flow.node("call").data.runner_input(lambda: context, now=NOW, new_id=uuid4)
    assert sent["url"] == "https://x.test/ada" and sent["timeout_seconds"] == 30 and "name" not in sent
    code = flow.node("calc").data.runner_input(lambda: context, now=NOW, new_id=uuid4)
    assert code["code"] == "def main():\n    return 1\n" and code["context"]["trigger"] == {"name": "ada"}
