"""The AI agent node's config: a task for the tenant's model, the tools it may call, and its limits.

The orchestrator drives the agent's loop (each model turn a command to the AI runner, each tool call a
command to the runner class that does it, each recorded in the run log); ``language.agent_tools``
turns these tool declarations into the definitions the model sees and checks the calls it makes."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.workflow_configs.ai import _AiConfig, _schema_problem
from millrace_common.language.workflow_configs.base import PipelineId, _Frozen, _invalid
from millrace_common.language.workflow_configs.external import HttpAuth
from millrace_common.language.workflow_configs.human import Assignee

ToolName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")]
RecordAction = Literal["find", "create", "update"]
RECORD_TOOL_NAMES: dict[str, str] = {
    "find": "find_records",
    "create": "create_record",
    "update": "update_record",
}
"""The tool each record action gives the model; these names are not free for HTTP or workflow tools."""
HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class RecordTools(_Frozen):
    """Find, create and update records, in the pipelines named here only."""

    kind: Literal["records"]
    pipelines: tuple[PipelineId, ...] = Field(min_length=1, max_length=20)
    actions: tuple[RecordAction, ...] = Field(default=("find",), min_length=1, max_length=3)
    approval: bool = Field(
        default=False, description="Creating or updating a record waits for the node's approver"
    )
    timeout_seconds: float = Field(default=30, gt=0, le=600)

    @field_validator("actions")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise _invalid("actions must be distinct")
        return value


class HttpTool(_Frozen):
    """Requests to URLs matching ``url_patterns`` (``*`` matches any run of characters after the host),
    through the same address guard, network policy and credentials as ``http_request``."""

    kind: Literal["http"]
    name: ToolName
    description: str = Field(min_length=1, max_length=2000)
    url_patterns: tuple[str, ...] = Field(min_length=1, max_length=20)
    methods: tuple[HttpMethod, ...] = Field(default=("GET",), min_length=1, max_length=5)
    auth: HttpAuth | None = None
    approval: bool = Field(
        default=False, description="A request other than GET waits for the node's approver"
    )
    timeout_seconds: float = Field(default=30, gt=0, le=600)
    response_cap_bytes: int = Field(default=256 * 1024, ge=1, le=10 * 1024 * 1024)

    @field_validator("url_patterns")
    @classmethod
    def _patterns_name_their_host(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            problem = url_pattern_problem(pattern)
            if problem is not None:
                raise _invalid(problem)
        return value


class WorkflowTool(_Frozen):
    """A run of another workflow of the tenant; its arguments are that workflow's input, checked
    against the ``input_schema`` of its manual trigger."""

    kind: Literal["workflow"]
    name: ToolName
    description: str = Field(min_length=1, max_length=2000)
    workflow_id: UUID
    version: int | None = Field(default=None, ge=1, description="A pinned version; none: the active one")
    approval: bool = Field(default=False, description="Each run waits for the node's approver")


AgentTool = Annotated[RecordTools | HttpTool | WorkflowTool, Field(discriminator="kind")]


class AiAgentConfig(_AiConfig):
    """``timeout_seconds`` bounds one model turn; ``max_seconds`` the whole loop."""

    literal_fields = _AiConfig.literal_fields | {
        "tools",
        "output_schema",
        "max_turns",
        "max_tool_calls",
        "max_total_tokens",
        "max_seconds",
        "tool_result_max_chars",
        "approver",
    }

    task: str = Field(min_length=1, max_length=65_536)
    tools: tuple[AgentTool, ...] = Field(default=(), max_length=20)
    output_schema: JsonObject | None = Field(
        default=None, description="The final answer is one JSON object matching this schema"
    )
    max_turns: int = Field(default=10, ge=1, le=50, description="Model turns at most")
    max_tool_calls: int = Field(default=20, ge=0, le=200, description="Tool calls at most")
    max_total_tokens: int = Field(
        default=100_000, ge=1, le=10_000_000, description="Tokens (prompt and completion) at most"
    )
    max_seconds: float = Field(default=300, gt=0, le=86_400, description="Wall time of the whole loop")
    tool_result_max_chars: int = Field(
        default=8_000,
        ge=100,
        le=100_000,
        description="A tool's result is cut to this before the model sees it",
    )
    approver: Assignee | None = Field(
        default=None, description="Who allows the tool calls whose tool has approval set"
    )

    @field_validator("output_schema")
    @classmethod
    def _object_schema(cls, value: JsonObject | None) -> JsonObject | None:
        if value is None:
            return value
        if value.get("type") != "object":
            raise _invalid('output_schema must describe an object: {"type": "object", "properties": {...}}')
        problem = _schema_problem(value, "output_schema")
        if problem is not None:
            raise _invalid(problem)
        return value

    @model_validator(mode="after")
    def _tools_are_distinct(self) -> AiAgentConfig:
        names: list[str] = []
        records = [t for t in self.tools if isinstance(t, RecordTools)]
        if len(records) > 1:
            raise ValueError("at most one records entry: list every pipeline in its 'pipelines'")
        for tool in self.tools:
            if isinstance(tool, RecordTools):
                names += [RECORD_TOOL_NAMES[action] for action in tool.actions]
            else:
                if tool.name in RECORD_TOOL_NAMES.values():
                    raise ValueError(f"the tool name {tool.name!r} is reserved for the records tools")
                names.append(tool.name)
        if len(set(names)) != len(names):
            raise ValueError("tool names must be distinct")
        if self.approver is None and any(t.approval for t in self.tools):
            raise ValueError("a tool with approval needs the node's approver")
        return self


def url_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot bound a tool's URLs, or None: it names its scheme and host (no ``*``
    there, so a pattern never matches a host the author did not write) and a path."""
    if not pattern.startswith(("http://", "https://")):
        return f"the URL pattern {pattern!r} must start with http:// or https://"
    rest = pattern.split("://", 1)[1]
    host, slash, _ = rest.partition("/")
    if not slash:
        return f"the URL pattern {pattern!r} needs a path after its host (end it with /* for any path)"
    if not host or any(c in host for c in "*@?#[] "):
        return f"the URL pattern {pattern!r} must name its host exactly (no *, @ or spaces in it)"
    try:
        urlsplit(pattern.replace("*", "x"))
    except ValueError as error:
        return f"the URL pattern {pattern!r} is not a URL: {error}"
    return None
