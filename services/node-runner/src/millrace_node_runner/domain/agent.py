"""One model turn of an ``ai_agent`` node as decisions: the request it makes (the whole conversation
and the node's tools, with each workflow tool's input schema), what makes two turns the same, and
the turn's output: the model's message and each call it asked for, checked. Pure.

The orchestrator runs the loop; the runner answers one turn at a time and judges no call beyond
saying why it cannot run (``problem``), so the orchestrator feeds that back instead of running it."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language import agent_tools
from millrace_common.language.workflow_configs.agent import AiAgentConfig, WorkflowTool
from pydantic import JsonValue

from millrace_node_runner.domain.ai import AiSettings, ChatAnswer, ToolCall
from millrace_node_runner.domain.inputs import AgentMessageInput, AiAgentTurnInput

NOT_AN_OBJECT = "the arguments are not a JSON object"
AvailableSchemas = Mapping[UUID, JsonObject | None]
"""The input schema of each workflow tool's workflow that the tenant may run (None: it declares
none); a workflow tool whose workflow is not here is not available."""


@dataclass(frozen=True)
class AgentRequest:
    model: str
    temperature: float
    max_tokens: int
    messages: tuple[JsonObject, ...]
    tools: tuple[JsonObject, ...]

    @property
    def json_mode(self) -> bool:
        # Tool calls and JSON mode do not mix on every compatible server; the orchestrator checks a
        # final answer against the node's output_schema itself.
        return False

    def message_dicts(self) -> list[JsonObject]:
        return list(self.messages)


def agent_config(node: AiAgentTurnInput) -> AiAgentConfig:
    """The node's config as far as the tool definitions and call checks read it: its tools, validated
    already as the turn's input (the turn carries no other part of the config, so nothing else is
    validated again: a tool with approval has its approver in the orchestrator's copy)."""
    return AiAgentConfig.model_construct(tools=node.tools)


def workflow_tools(config: AiAgentConfig) -> tuple[WorkflowTool, ...]:
    return tuple(tool for tool in config.tools if isinstance(tool, WorkflowTool))


def manual_input_schema(definition: JsonValue) -> JsonObject | None:
    """The ``input_schema`` of a stored workflow definition's trigger, or None when it declares none."""
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    for node in nodes if isinstance(nodes, list) else ():
        if isinstance(node, dict) and node.get("type") == "trigger":
            data = node.get("data")
            schema = data.get("input_schema") if isinstance(data, dict) else None
            return schema if isinstance(schema, dict) else None
    return None


def message_json(message: AgentMessageInput) -> JsonObject:
    """The message as the chat API takes it: ``tool_calls`` and ``tool_call_id`` only where they are."""
    found: JsonObject = {"role": message.role, "content": message.content}
    if message.tool_calls:
        found["tool_calls"] = [call.model_dump(mode="json") for call in message.tool_calls]
    if message.tool_call_id is not None:
        found["tool_call_id"] = message.tool_call_id
    return found


def agent_request(node: AiAgentTurnInput, settings: AiSettings, schemas: AvailableSchemas) -> AgentRequest:
    """The node's own model, temperature and token limit win over the tenant's defaults."""
    return AgentRequest(
        model=node.model or settings.model,
        temperature=node.temperature if node.temperature is not None else settings.temperature,
        max_tokens=node.max_tokens or settings.max_tokens,
        messages=tuple(message_json(m) for m in node.messages),
        tools=tuple(agent_tools.definitions(agent_config(node), schemas)),
    )


def turn_key(base_url: str, request: AgentRequest) -> str:
    """The same turn asked again (a redelivered command, a replayed run) is the same endpoint, model,
    settings, conversation and tool definitions; keys are sorted, so the spelling of a dict's order
    never makes a turn new."""
    material = {
        "type": "ai_agent",
        "endpoint": base_url.rstrip("/"),
        "model": request.model,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "messages": list(request.messages),
        "tools": list(request.tools),
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def parsed_arguments(text: str) -> JsonObject | None:
    """The call's arguments when they are one JSON object; blank ones are none at all (some servers
    send an empty string for a call of a tool without parameters)."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def call_problem(
    config: AiAgentConfig, name: str, arguments: JsonObject | None, schemas: AvailableSchemas
) -> str | None:
    """Why the call cannot run, in words for the model, or None."""
    tool = agent_tools.find_tool(config, name)
    if tool is None:
        return agent_tools.call_problem(config, name, arguments, schemas)
    if arguments is None:
        return NOT_AN_OBJECT
    if isinstance(tool, WorkflowTool) and tool.workflow_id not in schemas:
        pinned = f" (version {tool.version})" if tool.version is not None else ""
        return f"the workflow {tool.workflow_id}{pinned} of the tool {name!r} is not available"
    return agent_tools.call_problem(config, name, arguments, schemas)


def _call_json(call: ToolCall) -> JsonObject:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}


def _checked_call(config: AiAgentConfig, call: ToolCall, schemas: AvailableSchemas) -> JsonObject:
    arguments = parsed_arguments(call.arguments)
    return {
        "id": call.id,
        "name": call.name,
        "arguments": arguments,
        "problem": call_problem(config, call.name, arguments, schemas),
    }


def turn_output(answer: ChatAnswer, config: AiAgentConfig, schemas: AvailableSchemas) -> JsonObject:
    """The turn's output: the assistant message to add to the conversation as it is (without
    ``tool_calls`` when it made none, as chat servers refuse an empty list), and each call checked."""
    message: JsonObject = {"role": "assistant", "content": answer.content}
    if answer.tool_calls:
        message["tool_calls"] = [_call_json(call) for call in answer.tool_calls]
    return {
        "message": message,
        "calls": [_checked_call(config, call, schemas) for call in answer.tool_calls],
        "model": answer.model,
        "finish_reason": answer.finish_reason,
        "usage": answer.usage.as_json(),
        "cached": False,
    }
