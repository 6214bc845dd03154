"""The node runner answering ``ai_agent`` turns as a real process on real Kafka and PostgreSQL, against a
loopback OpenAI-compatible server: a turn's tool calls come back checked (workflow tools against the
input schema stored for the tenant's workflow), the next turn carries the tool results, a turn asked
again is answered from the run's stored answer, and its tokens count for the agent's node."""

# ruff: noqa: F811  (the fixtures imported from the runner's module are the tests' parameters)
from __future__ import annotations

import json
import secrets
import uuid
from typing import Any

import pytest
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.node_commands import NodeSucceededResult
from millrace_common.platform.tables import ai_token_usage, workflow_versions, workflows
from sqlalchemy import insert, select

from tests.integration.test_node_runner_nodes import (  # noqa: F401  (fixtures)
    Runner,
    failure,
    path,
    runner,
    runner_process,
    server,
)
from tests.support.network import ChatRoute, ChatToolCall, ChatTurn, LoopbackServer, chat_route

pytestmark = pytest.mark.integration

SIGNUP_SCHEMA = {
    "type": "object",
    "properties": {"email": {"type": "string"}},
    "required": ["email"],
    "additionalProperties": False,
}
SYSTEM = {"role": "system", "content": "You help the sales team."}
TASK = {"role": "user", "content": "Sign up ada@example.com unless she is a customer."}


async def agent_tenant(
    runner: Runner, server: LoopbackServer, turns: list[ChatTurn]
) -> tuple[str, ChatRoute]:
    tenant = await runner.tenant()
    queue = list(turns)
    route = chat_route(lambda _asked: queue.pop(0) if len(queue) > 1 else queue[0])
    prefix = path()
    server.route(f"{prefix}/v1/chat/completions", route)
    await runner.ai_settings(tenant, f"{server.url}{prefix}/v1")
    return tenant, route


async def stored_workflow(
    runner: Runner, tenant: str, input_schema: dict | None, *, status: str = "active"
) -> uuid.UUID:
    """A workflow with one version as the gateway stores it, its trigger declaring ``input_schema``."""
    workflow_id, now = uuid.uuid4(), utc_now()
    trigger: dict[str, Any] = {"name": "Start", "kind": "manual"}
    if input_schema is not None:
        trigger["input_schema"] = input_schema
    definition = {
        "nodes": [{"id": "start", "type": "trigger", "position": {"x": 0, "y": 0}, "data": trigger}],
        "edges": [],
        "settings": {},
    }
    async with runner.db.begin() as connection:
        await connection.execute(
            insert(workflows).values(
                id=workflow_id,
                tenant_id=tenant,
                name="signup",
                status=status,
                latest_version=1,
                active_version=1,
                webhook_token=secrets.token_urlsafe(24),
                created_at=now,
                updated_at=now,
            )
        )
        await connection.execute(
            insert(workflow_versions).values(
                workflow_id=workflow_id, version=1, tenant_id=tenant, definition=definition, created_at=now
            )
        )
    return workflow_id


def workflow_tool(name: str, workflow_id: uuid.UUID) -> dict:
    return {"kind": "workflow", "name": name, "description": f"Run {name}", "workflow_id": str(workflow_id)}


def turn_input(messages: list[dict], tools: list[dict], turn: int = 1) -> dict:
    return {
        "model": None,
        "temperature": None,
        "max_tokens": None,
        "messages": messages,
        "tools": tools,
        "turn": turn,
    }


def definitions_of(asked: dict) -> dict[str, dict]:
    return {d["function"]["name"]: d["function"]["parameters"] for d in asked["tools"]}


async def test_a_turn_that_asks_for_tools_returns_each_call_checked_and_its_tokens_count_for_the_agent(
    runner: Runner, server: LoopbackServer
):
    calls = (
        ChatToolCall("call_1", "find_records", '{"pipeline": "customers", "where": []}'),
        ChatToolCall("call_2", "signup", '{"email": 7}'),
        ChatToolCall("call_3", "drop_tables", "{}"),
        ChatToolCall("call_4", "signup", '{"email": "ada@'),
    )
    tenant, route = await agent_tenant(
        runner, server, [ChatTurn(tool_calls=calls, prompt_tokens=40, completion_tokens=12)]
    )
    signup = await stored_workflow(runner, tenant, SIGNUP_SCHEMA)
    tools = [{"kind": "records", "pipelines": ["customers"]}, workflow_tool("signup", signup)]
    command = runner.command(tenant, "ai_agent", turn_input([SYSTEM, TASK], tools), node_id="agent1#m1")

    await runner.send(command)
    result = await runner.result_of(command)

    assert isinstance(result, NodeSucceededResult) and result.node_id == "agent1#m1"
    output = result.output
    assert output["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in calls
        ],
    }
    assert [(c["id"], c["name"], c["arguments"]) for c in output["calls"]] == [
        ("call_1", "find_records", {"pipeline": "customers", "where": []}),
        ("call_2", "signup", {"email": 7}),
        ("call_3", "drop_tables", {}),
        ("call_4", "signup", None),
    ]
    problems = [c["problem"] for c in output["calls"]]
    assert problems[0] is None
    assert problems[1] == '/email: 7 is not of type "string"'
    assert problems[2] == "there is no tool named 'drop_tables'; the tools are: find_records, signup"
    assert problems[3] == "the arguments are not a JSON object"
    assert (output["model"], output["finish_reason"], output["cached"]) == (
        "tenant-model",
        "tool_calls",
        False,
    )
    assert output["usage"] == {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
    (asked,) = route.requests
    assert asked["messages"] == [SYSTEM, TASK]
    assert (asked["model"], asked["temperature"], asked["max_tokens"]) == ("tenant-model", 0.3, 256)
    assert definitions_of(asked)["signup"] == SIGNUP_SCHEMA
    assert definitions_of(asked)["find_records"]["properties"]["pipeline"]["enum"] == ["customers"]
    async with runner.db.connect() as connection:
        usage = (
            await connection.execute(select(ai_token_usage).where(ai_token_usage.c.tenant_id == tenant))
        ).one()
    assert (usage.run_id, usage.workflow_id, usage.node_id, usage.total_tokens) == (
        command.run_id,
        command.workflow_id,
        "agent1",
        52,
    )


async def test_the_next_turn_carries_the_tool_results_and_a_turn_asked_again_is_not_paid_twice(
    runner: Runner, server: LoopbackServer
):
    tenant, route = await agent_tenant(
        runner,
        server,
        [ChatTurn("Ada is signed up.", prompt_tokens=60, completion_tokens=5), ChatTurn("again")],
    )
    asked_for = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "find_records", "arguments": "{}"}}
        ],
    }
    answered = {"role": "tool", "tool_call_id": "call_1", "content": "[]"}
    node_input = turn_input(
        [SYSTEM, TASK, asked_for, answered], [{"kind": "records", "pipelines": ["p"]}], turn=2
    )
    run_id = uuid.uuid4()
    first = runner.command(tenant, "ai_agent", node_input, run_id=run_id, node_id="agent1[2]#m2")
    redelivered = runner.command(tenant, "ai_agent", node_input, run_id=run_id, node_id="agent1[2]#m2")

    await runner.send(first)
    paid = await runner.result_of(first)
    await runner.send(redelivered)
    reused = await runner.result_of(redelivered)

    assert isinstance(paid, NodeSucceededResult) and isinstance(reused, NodeSucceededResult)
    assert paid.output["message"] == {"role": "assistant", "content": "Ada is signed up."}
    assert (paid.output["calls"], paid.output["finish_reason"], paid.output["cached"]) == ([], "stop", False)
    assert reused.output == {**paid.output, "cached": True}
    (asked,) = route.requests
    assert asked["messages"] == [SYSTEM, TASK, asked_for, answered]
    assert [d["function"]["name"] for d in asked["tools"]] == ["find_records"]
    assert await runner.count(ai_token_usage, ai_token_usage.c.run_id == run_id) == 1


async def test_a_workflow_tool_of_another_tenant_or_archived_is_not_available(
    runner: Runner, server: LoopbackServer
):
    calls = (
        ChatToolCall("c1", "theirs", "{}"),
        ChatToolCall("c2", "archived", "{}"),
        ChatToolCall("c3", "open", "{}"),
    )
    tenant, route = await agent_tenant(runner, server, [ChatTurn(tool_calls=calls)])
    theirs = await stored_workflow(runner, await runner.tenant(), SIGNUP_SCHEMA)
    archived = await stored_workflow(runner, tenant, SIGNUP_SCHEMA, status="archived")
    open_input = await stored_workflow(runner, tenant, None)
    tools = [
        workflow_tool("theirs", theirs),
        workflow_tool("archived", archived),
        workflow_tool("open", open_input),
    ]

    result = await runner.run(tenant, "ai_agent", turn_input([TASK], tools), node_id="agent1#m1")

    assert isinstance(result, NodeSucceededResult)
    assert [c["problem"] for c in result.output["calls"]] == [
        f"the workflow {theirs} of the tool 'theirs' is not available",
        f"the workflow {archived} of the tool 'archived' is not available",
        None,
    ]
    (asked,) = route.requests
    assert definitions_of(asked) == {n: {"type": "object"} for n in ("theirs", "archived", "open")}
    assert json.dumps(SIGNUP_SCHEMA) not in json.dumps(asked)


async def test_a_failing_endpoint_fails_the_turn_with_its_typed_error_and_records_no_usage(
    runner: Runner, server: LoopbackServer
):
    tenant, _ = await agent_tenant(runner, server, [ChatTurn(status=503, headers={"retry-after": "3"})])

    result = await runner.run(tenant, "ai_agent", turn_input([TASK], []), node_id="agent1#m1")
    malformed = await runner.run(
        tenant, "ai_agent", {"messages": [], "tools": [], "turn": 1}, node_id="agent1#m2"
    )

    assert failure(result) == ("ai_status", True) and result.error.retry_after_seconds == 3
    assert failure(malformed) == ("invalid_input", False)
    assert await runner.count(ai_token_usage, ai_token_usage.c.tenant_id == tenant) == 0
