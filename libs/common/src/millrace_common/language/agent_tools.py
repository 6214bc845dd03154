"""The AI agent's tools as the model sees them and as they run. Pure.

:func:`definitions` gives the tools of an ``ai_agent`` node in the OpenAI tool-calling format;
:func:`call_problem` says why a call the model made cannot run (a tool it was not given, arguments
that break the tool's JSON Schema, a URL outside the tool's patterns, a pipeline the node does not
name), so it is answered with a tool error instead; :func:`tool_step` turns a call that can run into
what runs it: a node command (``record_find``, ``record_create``, ``record_update``,
``http_request``) or a workflow run. Nothing the model says widens what the node declared: the
pipelines, URL patterns, methods and credentials come from the node's config, the tenant from the run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import JsonValue

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.input_schema import input_problems
from millrace_common.language.workflow_configs.agent import (
    RECORD_TOOL_NAMES,
    AgentTool,
    AiAgentConfig,
    HttpTool,
    RecordTools,
    WorkflowTool,
)

__all__ = [
    "FIND_OPERATORS",
    "ToolStep",
    "arguments_hash",
    "call_problem",
    "definitions",
    "find_tool",
    "tool_step",
    "url_allowed",
]

FIND_OPERATORS = (
    "equals",
    "not_equals",
    "greater_than",
    "greater_than_or_equals",
    "less_than",
    "less_than_or_equals",
    "contains",
    "starts_with",
    "in",
    "is_empty",
    "is_not_empty",
)
MAX_FIND_LIMIT = 100
WorkflowSchemas = Mapping[UUID, JsonObject | None]
"""The declared input of each workflow tool's workflow (None: it declares none, any object goes)."""


def _record_tools(tools: RecordTools) -> list[tuple[str, str, JsonObject]]:
    pipeline: JsonObject = {
        "type": "string",
        "enum": list(tools.pipelines),
        "description": "The pipeline (a collection of records) to use",
    }
    found: list[tuple[str, str, JsonObject]] = []
    if "find" in tools.actions:
        where: JsonObject = {
            "type": "array",
            "maxItems": 10,
            "description": "Conditions every record found meets (none: every record)",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["field", "operator"],
                "properties": {
                    "field": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 200,
                        "description": "A field of the record's data ('amount', 'owner.email'), or 'id'",
                    },
                    "operator": {"type": "string", "enum": list(FIND_OPERATORS)},
                    "value": {"description": "What the field is compared with ('in': a list)"},
                },
            },
        }
        found.append(
            (
                RECORD_TOOL_NAMES["find"],
                "Find records in a pipeline. Returns each record's id and data.",
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["pipeline"],
                    "properties": {
                        "pipeline": pipeline,
                        "where": where,
                        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_FIND_LIMIT},
                    },
                },
            )
        )
    if "create" in tools.actions:
        found.append(
            (
                RECORD_TOOL_NAMES["create"],
                "Create a record in a pipeline with the given data. Returns the new record.",
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["pipeline", "data"],
                    "properties": {"pipeline": pipeline, "data": {"type": "object"}},
                },
            )
        )
    if "update" in tools.actions:
        found.append(
            (
                RECORD_TOOL_NAMES["update"],
                (
                    "Update a record: the given fields of its data are set, the others kept. "
                    "Returns the record as it is now."
                ),
                {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["pipeline", "record_id", "data"],
                    "properties": {
                        "pipeline": pipeline,
                        "record_id": {"type": "string", "minLength": 1, "maxLength": 1000},
                        "data": {"type": "object"},
                    },
                },
            )
        )
    return found


def _http_parameters(tool: HttpTool) -> JsonObject:
    return {
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "method": {"type": "string", "enum": list(tool.methods), "default": tool.methods[0]},
            "url": {
                "type": "string",
                "maxLength": 4096,
                "description": "The URL; it must match one of: " + ", ".join(tool.url_patterns),
            },
            "query": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"description": "A JSON body (not for GET)"},
        },
    }


def _parameters(tool: AgentTool, schemas: WorkflowSchemas) -> list[tuple[str, str, JsonObject]]:
    if isinstance(tool, RecordTools):
        return _record_tools(tool)
    if isinstance(tool, HttpTool):
        return [(tool.name, tool.description, _http_parameters(tool))]
    declared = schemas.get(tool.workflow_id)
    return [(tool.name, tool.description, dict(declared) if declared else {"type": "object"})]


def definitions(config: AiAgentConfig, schemas: WorkflowSchemas) -> list[JsonObject]:
    """The node's tools in the OpenAI ``tools`` format, in the order the node lists them."""
    return [
        {"type": "function", "function": {"name": name, "description": text, "parameters": parameters}}
        for tool in config.tools
        for name, text, parameters in _parameters(tool, schemas)
    ]


def find_tool(config: AiAgentConfig, name: str) -> AgentTool | None:
    """The declaration that gives the model the tool ``name``, or None when the node gave no such tool."""
    for tool in config.tools:
        if isinstance(tool, RecordTools):
            if any(RECORD_TOOL_NAMES[a] == name for a in tool.actions):
                return tool
        elif tool.name == name:
            return tool
    return None


def _schema_problems(schema: JsonObject, instance: JsonValue) -> str | None:
    try:
        problems = input_problems(schema, instance)
    except ValueError as error:
        return f"the tool's parameter schema is not usable: {str(error).splitlines()[0]}"
    return "; ".join(f"{p.pointer or '/'}: {p.message}" for p in problems[:3]) or None


_DOT_SEGMENT = re.compile(r"(^|/)(\.|%2e){1,2}(/|$)", re.IGNORECASE)


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(
        "".join(".*" if part == "*" else re.escape(part) for part in re.split(r"(\*)", pattern))
    )


def url_allowed(tool: HttpTool, url: str) -> bool:
    """``url`` matches one of the tool's patterns and names the same scheme and host as that pattern
    (so neither user info nor an odd spelling of the host reaches another address)."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not one
    except ValueError:
        return False
    if parts.username is not None or parts.password is not None or any(c.isspace() for c in url):
        return False
    if _DOT_SEGMENT.search(parts.path):  # ``/v1/../admin`` matches ``/v1/*`` but is sent as ``/admin``
        return False
    for pattern in tool.url_patterns:
        wanted = urlsplit(pattern.replace("*", "x"))
        if (
            parts.scheme == wanted.scheme
            and (parts.hostname or "") == (wanted.hostname or "")
            and port == wanted.port
            and _glob(pattern).fullmatch(url)
        ):
            return True
    return False


def call_problem(
    config: AiAgentConfig, name: str, arguments: JsonValue, schemas: WorkflowSchemas | None = None
) -> str | None:
    """Why the call cannot run, in words for the model, or None. Without ``schemas`` a workflow
    tool's arguments are only required to be an object (its run checks them against its schema)."""
    tool = find_tool(config, name)
    if tool is None:
        offered = ", ".join(n for d in definitions(config, {}) if (n := str(d["function"]["name"])))  # type: ignore[index]
        return f"there is no tool named {name!r}; the tools are: {offered or 'none'}"
    if not isinstance(arguments, dict):
        return "the arguments must be one JSON object"
    if isinstance(tool, WorkflowTool):
        declared = (schemas or {}).get(tool.workflow_id)
        return _schema_problems(dict(declared), arguments) if declared else None
    for tool_name, _, parameters in _parameters(tool, {}):
        if tool_name == name and (problem := _schema_problems(parameters, arguments)) is not None:
            return f"the arguments do not match the tool's parameters: {problem}"
    if isinstance(tool, HttpTool):
        url = str(arguments.get("url", ""))
        if not url_allowed(tool, url):
            return f"the URL {url[:200]!r} is not one this tool may call: {', '.join(tool.url_patterns)}"
        method = str(arguments.get("method") or tool.methods[0])
        if method == "GET" and arguments.get("body") is not None:
            return "a GET request has no body"
    return None


@dataclass(frozen=True)
class ToolStep:
    """What runs a call: a node command of ``node_type`` with ``input``, or (``kind`` "workflow") a
    run of ``workflow_id`` with ``input`` as its trigger data. ``needs_approval``: it waits for the
    node's approver first."""

    kind: Literal["node", "workflow"]
    node_type: str
    input: JsonObject
    timeout_seconds: float
    needs_approval: bool
    workflow_id: UUID | None = None
    version: int | None = None


def _comparison(condition: JsonObject) -> JsonObject:
    field = str(condition["field"])
    path = field if field == "id" or field.startswith("data.") else f"data.{field}"
    operator = str(condition["operator"])
    if operator in ("is_empty", "is_not_empty"):
        return {"field": path, "operator": operator}
    return {"field": path, "operator": operator, "value": condition.get("value")}


def tool_step(config: AiAgentConfig, name: str, arguments: JsonObject) -> ToolStep:
    """What runs a call that :func:`call_problem` passed."""
    tool = find_tool(config, name)
    if tool is None:
        raise ValueError(f"no tool named {name!r}")
    if isinstance(tool, RecordTools):
        pipeline = str(arguments["pipeline"])
        if name == RECORD_TOOL_NAMES["find"]:
            where = arguments.get("where") or []
            comparisons = [_comparison(c) for c in where if isinstance(c, dict)]  # type: ignore[union-attr]
            node_input: JsonObject = {
                "pipeline_id": pipeline,
                "filters": {"and": comparisons} if comparisons else None,
                "sort": [],
                "limit": int(arguments.get("limit") or 20),  # type: ignore[arg-type]
            }
            return ToolStep("node", "record_find", node_input, tool.timeout_seconds, needs_approval=False)
        if name == RECORD_TOOL_NAMES["create"]:
            node_input = {"pipeline_id": pipeline, "data": arguments["data"]}
            return ToolStep("node", "record_create", node_input, tool.timeout_seconds, tool.approval)
        node_input = {
            "pipeline_id": pipeline,
            "record_id": arguments["record_id"],
            "data": arguments["data"],
            "mode": "merge",
        }
        return ToolStep("node", "record_update", node_input, tool.timeout_seconds, tool.approval)
    if isinstance(tool, HttpTool):
        method = str(arguments.get("method") or tool.methods[0])
        node_input = {
            "method": method,
            "url": arguments["url"],
            "headers": {},
            "query": arguments.get("query") or {},
            "auth": tool.auth.model_dump(mode="json") if tool.auth else None,
            "body_type": "json",
            "body": arguments.get("body"),
            "response_cap_bytes": tool.response_cap_bytes,
            # A redirect could lead outside the tool's patterns: the model sees it and may ask again.
            "follow_redirects": False,
        }
        return ToolStep(
            "node",
            "http_request",
            node_input,
            tool.timeout_seconds,
            needs_approval=tool.approval and method != "GET",
        )
    return ToolStep(
        "workflow",
        "sub_workflow",
        dict(arguments),
        timeout_seconds=0,
        needs_approval=tool.approval,
        workflow_id=tool.workflow_id,
        version=tool.version,
    )


def arguments_hash(name: str, arguments: JsonValue) -> str:
    """What an approval of a call, and the call's idempotency key, are bound to: the tool and its exact
    arguments."""
    material = json.dumps(
        {"tool": name, "arguments": arguments}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(material.encode()).hexdigest()
