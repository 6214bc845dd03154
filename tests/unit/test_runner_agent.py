"""An ``ai_agent`` turn as decisions: the request it makes, what makes two turns the same, and how the
model's answer and the calls it asks for come back."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_node_runner.domain.agent import (
    NOT_AN_OBJECT,
    AgentRequest,
    agent_config,
    agent_request,
    manual_input_schema,
    parsed_arguments,
    turn_key,
    turn_output,
    workflow_tools,
)
from millrace_node_runner.domain.ai import AiSettings, ChatAnswer, ToolCall, Usage, usage_node_id
from millrace_node_runner.domain.inputs import AiAgentTurnInput
from pydantic import ValidationError

pytestmark = pytest.mark.unit

SETTINGS = AiSettings(
    base_url="https://llm.test/v1",
    model="tenant-model",
    temperature=0.2,
    max_tokens=512,
    monthly_token_budget=None,
    allow_private_endpoint=False,
)
ONBOARD = uuid.UUID("6a1d2f0e-6a4c-4d35-9d54-1d4e0c8b7a01")
GONE = uuid.UUID("0b5e4c2a-77f1-4a8e-8f2e-3c9d1a2b4c5d")
ONBOARD_SCHEMA = {
    "type": "object",
    "properties": {"email": {"type": "string"}},
    "required": ["email"],
}
TOOLS = [
    {"kind": "records", "pipelines": ["deals"], "actions": ["find", "create"]},
    {
        "kind": "http",
        "name": "weather",
        "description": "The weather in a city",
        "url_patterns": ["https://weather.test/*"],
    },
    {"kind": "workflow", "name": "onboard", "description": "Onboard a customer", "workflow_id": str(ONBOARD)},
    {"kind": "workflow", "name": "retired", "description": "Gone", "workflow_id": str(GONE)},
]
CONVERSATION = [
    {"role": "system", "content": "You help the sales team."},
    {"role": "user", "content": "How many deals?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "find_records", "arguments": "{}"}}
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "content": '[{"id": "d1"}]'},
]
AVAILABLE = {ONBOARD: ONBOARD_SCHEMA}


def turn(**fields: object) -> AiAgentTurnInput:
    return AiAgentTurnInput.model_validate({"messages": CONVERSATION, "tools": TOOLS, "turn": 2} | fields)


def answer(*calls: ToolCall, content: str | None = None) -> ChatAnswer:
    return ChatAnswer(
        content=content,
        model="m-1",
        finish_reason="tool_calls" if calls else "stop",
        usage=Usage(30, 7),
        tool_calls=calls,
    )


def test_a_turn_sends_the_whole_conversation_and_the_tools_with_the_tenants_defaults():
    request = agent_request(turn(), SETTINGS, AVAILABLE)
    tuned = agent_request(turn(model="big", temperature=0, max_tokens=9), SETTINGS, AVAILABLE)

    assert (request.model, request.temperature, request.max_tokens) == ("tenant-model", 0.2, 512)
    assert (tuned.model, tuned.temperature, tuned.max_tokens) == ("big", 0, 9)
    assert request.message_dicts() == CONVERSATION
    assert not request.json_mode
    names = [d["function"]["name"] for d in request.tools]  # type: ignore[index]
    assert names == ["find_records", "create_record", "weather", "onboard", "retired"]
    parameters = {d["function"]["name"]: d["function"]["parameters"] for d in request.tools}  # type: ignore[index]
    assert parameters["onboard"] == ONBOARD_SCHEMA
    assert parameters["retired"] == {"type": "object"}


def test_a_turn_without_tools_asks_plainly():
    request = agent_request(turn(tools=[]), SETTINGS, {})

    assert request.tools == ()
    assert workflow_tools(agent_config(turn(tools=[]))) == ()
    assert [t.name for t in workflow_tools(agent_config(turn()))] == ["onboard", "retired"]


def test_messages_that_break_the_chat_format_are_refused():
    for wrong in (
        {"role": "tool", "content": "no id"},
        {"role": "user", "content": "x", "tool_call_id": "call_1"},
        {"role": "user", "content": "x", "tool_calls": CONVERSATION[2]["tool_calls"]},
        {"role": "assistant", "content": None},
    ):
        with pytest.raises(ValidationError):
            turn(messages=[*CONVERSATION[:2], wrong])


def test_an_answer_with_tool_calls_comes_back_as_the_message_to_add_and_each_call_checked():
    output = turn_output(
        answer(
            ToolCall("c1", "find_records", '{"pipeline": "deals", "limit": 5}'),
            ToolCall("c2", "delete_everything", "{}"),
            ToolCall("c3", "create_record", '{"pipeline": "deals", "data": '),
            ToolCall("c4", "onboard", '{"email": 4}'),
            ToolCall("c5", "retired", "{}"),
            ToolCall("c6", "weather", '{"url": "https://evil.test/x"}'),
            ToolCall("c7", "onboard", '{"email": "ada@example.com"}'),
            ToolCall("c8", "create_record", "[1, 2]"),
        ),
        agent_config(turn()),
        AVAILABLE,
    )

    message = output["message"]
    assert message["role"] == "assistant" and message["content"] is None  # type: ignore[index]
    assert message["tool_calls"][0] == {  # type: ignore[index]
        "id": "c1",
        "type": "function",
        "function": {"name": "find_records", "arguments": '{"pipeline": "deals", "limit": 5}'},
    }
    calls = {c["id"]: c for c in output["calls"]}  # type: ignore[index, union-attr]
    assert [c["id"] for c in output["calls"]] == ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8"]  # type: ignore[index, union-attr]
    assert calls["c1"] == {
        "id": "c1",
        "name": "find_records",
        "arguments": {"pipeline": "deals", "limit": 5},
        "problem": None,
    }
    assert calls["c2"]["problem"].startswith("there is no tool named 'delete_everything'")
    assert (calls["c3"]["arguments"], calls["c3"]["problem"]) == (None, NOT_AN_OBJECT)
    assert calls["c4"]["problem"] == '/email: 4 is not of type "string"'
    assert calls["c5"]["problem"] == f"the workflow {GONE} of the tool 'retired' is not available"
    assert "is not one this tool may call" in calls["c6"]["problem"]
    assert calls["c7"]["problem"] is None
    assert (calls["c8"]["arguments"], calls["c8"]["problem"]) == (None, NOT_AN_OBJECT)
    assert (output["model"], output["finish_reason"], output["cached"]) == ("m-1", "tool_calls", False)
    assert output["usage"] == {"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}


def test_a_final_answer_has_no_tool_calls_and_no_calls():
    output = turn_output(answer(content="There are 3 deals."), agent_config(turn()), AVAILABLE)

    assert output["message"] == {"role": "assistant", "content": "There are 3 deals."}
    assert output["calls"] == []


def test_arguments_are_one_json_object_and_blank_ones_none_at_all():
    assert parsed_arguments('{"a": [1]}') == {"a": [1]}
    assert parsed_arguments("  ") == {}
    assert parsed_arguments('"text"') is None
    assert parsed_arguments("{'a': 1}") is None


def test_a_workflows_input_schema_is_its_triggers():
    definition = {
        "nodes": [
            {"id": "n1", "type": "end", "data": {}},
            {"id": "start", "type": "trigger", "data": {"kind": "manual", "input_schema": ONBOARD_SCHEMA}},
        ]
    }

    assert manual_input_schema(definition) == ONBOARD_SCHEMA
    assert (
        manual_input_schema({"nodes": [{"id": "s", "type": "trigger", "data": {"kind": "manual"}}]}) is None
    )
    assert manual_input_schema({"nodes": "broken"}) is None
    assert manual_input_schema(None) is None


def test_an_agents_turns_count_for_its_node():
    assert usage_node_id("agent1#m3") == "agent1"
    assert usage_node_id("loop[2].agent1#t4.1") == "loop[2].agent1"
    assert usage_node_id("greet") == "greet"


def test_the_same_turn_has_one_key_and_its_tools_or_endpoint_make_another():
    request = agent_request(turn(), SETTINGS, AVAILABLE)
    key = turn_key(SETTINGS.base_url, request)

    assert key == turn_key(SETTINGS.base_url + "/", agent_request(turn(), SETTINGS, dict(AVAILABLE)))
    assert key != turn_key("https://other.test/v1", request)
    assert key != turn_key(SETTINGS.base_url, agent_request(turn(), SETTINGS, {}))
    assert key != turn_key(SETTINGS.base_url, agent_request(turn(temperature=1), SETTINGS, AVAILABLE))
    assert key != turn_key(SETTINGS.base_url, agent_request(turn(tools=TOOLS[:1]), SETTINGS, AVAILABLE))


def request_of(messages: list[dict]) -> AgentRequest:
    return AgentRequest("m", 0.2, 100, tuple(messages), ())


MESSAGES = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "user", "assistant", "tool"]), "content": st.text(max_size=20)},
        optional={"tool_call_id": st.text(min_size=1, max_size=8)},
    ),
    min_size=1,
    max_size=6,
)


@given(MESSAGES, st.data())
def test_a_turns_key_ignores_key_order_and_changes_with_any_message(
    messages: list[dict], data: st.DataObject
):
    reordered = [dict(reversed(list(m.items()))) for m in messages]
    changed = [dict(m) for m in messages]
    index = data.draw(st.integers(0, len(messages) - 1))
    changed[index]["content"] += data.draw(st.text(min_size=1, max_size=3))

    key = turn_key("https://llm.test/v1", request_of(messages))

    assert turn_key("https://llm.test/v1", request_of(reordered)) == key
    assert turn_key("https://llm.test/v1", request_of(changed)) != key
    assert turn_key("https://llm.test/v1", request_of([*messages, messages[0]])) != key
