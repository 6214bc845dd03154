"""What each node type's ``input`` must hold (its config with templates rendered), validated at the edge.

One model per node type, ignoring fields it does not use, so the workflow language can grow without
breaking the runner. Templates may render scalars where text is expected (``"{{ record.data.n }}"`` in
a header gives a number); those become text here, as they would in an HTTP request.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.conditions import Condition
from millrace_common.language.workflow_configs.agent import AgentTool
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)


def _as_text(value: object) -> object:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if value is None:
        return ""
    return value


Text = Annotated[str, BeforeValidator(_as_text)]
TextMap = dict[str, Text]
CredentialName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class HttpAuthInput(_Input):
    type: Literal["bearer", "basic", "header"]
    credential: CredentialName


class HttpRequestInput(_Input):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: Text = Field(min_length=1, max_length=8192)
    headers: TextMap = Field(default_factory=dict)
    query: TextMap = Field(default_factory=dict)
    auth: HttpAuthInput | None = None
    body_type: Literal["json", "form", "raw"] = "json"
    body: JsonValue = None
    response_cap_bytes: int = Field(default=1024 * 1024, ge=1, le=10 * 1024 * 1024)
    follow_redirects: bool = Field(
        default=True, description="False for an agent's HTTP tool: a redirect could leave its URL patterns"
    )

    @model_validator(mode="after")
    def _body_fits_its_type(self) -> HttpRequestInput:
        if self.body is None:
            return self
        if self.body_type == "form" and not (
            isinstance(self.body, dict)
            and all(isinstance(v, str | int | float | bool) for v in self.body.values())
        ):
            raise ValueError("a form body is an object of scalar values")
        if self.body_type == "raw" and not isinstance(self.body, str):
            raise ValueError("a raw body is a string")
        return self


class WebhookOutInput(_Input):
    url: Text = Field(min_length=1, max_length=8192)
    payload: JsonValue = None
    headers: TextMap = Field(default_factory=dict)
    secret_credential: CredentialName | None = None
    response_cap_bytes: int = Field(default=1024 * 1024, ge=1, le=10 * 1024 * 1024)


class _ModelChoice(_Input):
    model: str | None = Field(default=None, min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)


class _AiInput(_ModelChoice):
    system: Text | None = Field(default=None, max_length=65_536)


class AiPromptInput(_AiInput):
    prompt: Text = Field(min_length=1, max_length=262_144)


class AiAnalysisInput(_AiInput):
    prompt: Text = Field(min_length=1, max_length=262_144)
    output_schema: JsonObject


class AiClassificationInput(_AiInput):
    text: Text = Field(min_length=1, max_length=262_144)
    prompt: Text | None = Field(default=None, max_length=65_536)
    labels: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = Field(
        min_length=2, max_length=50
    )


class ToolCallFunctionInput(_Input):
    name: str = Field(min_length=1, max_length=200)
    arguments: str = Field(max_length=1_048_576)


class ToolCallInput(_Input):
    id: str = Field(min_length=1, max_length=200)
    type: Literal["function"] = "function"
    function: ToolCallFunctionInput


class AgentMessageInput(_Input):
    """One message of the agent's conversation as the OpenAI chat API spells it: an assistant
    message may carry the tool calls it made, a tool message names the call it answers."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str | None = Field(default=None, max_length=1_048_576)
    tool_calls: tuple[ToolCallInput, ...] = Field(default=(), max_length=200)
    tool_call_id: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _fits_its_role(self) -> AgentMessageInput:
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant message carries tool calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("a tool message, and only a tool message, names its tool_call_id")
        if self.content is None and not self.tool_calls:
            raise ValueError("a message without tool calls has content")
        return self


class AiAgentTurnInput(_ModelChoice):
    """One model turn of an ``ai_agent`` node: the whole conversation so far and the node's tools
    (its config's ``tools``, as declared), which the runner turns into the model's definitions."""

    messages: tuple[AgentMessageInput, ...] = Field(min_length=1, max_length=1000)
    tools: tuple[AgentTool, ...] = Field(default=(), max_length=20)
    turn: int = Field(ge=1)


PipelineId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
RecordId = Annotated[Text, Field(min_length=1, max_length=1000)]


class RecordCreateInput(_Input):
    pipeline_id: PipelineId
    data: JsonObject


class RecordUpdateInput(_Input):
    pipeline_id: PipelineId
    record_id: RecordId
    data: JsonObject
    mode: Literal["merge", "replace"] = "merge"


class SortKeyInput(_Input):
    field: str = Field(min_length=1, max_length=200)
    direction: Literal["asc", "desc"] = "asc"

    @field_validator("field")
    @classmethod
    def _a_record_field(cls, value: str) -> str:
        root = value.split(".", 1)[0]
        if root not in {"id", "created_at", "updated_at", "data"} or value in {"data"} or ".." in value:
            raise ValueError("sort by id, created_at, updated_at or data.<field>")
        return value


class RecordFindInput(_Input):
    pipeline_id: PipelineId
    filters: Condition | None = None
    sort: tuple[SortKeyInput, ...] = Field(default=(), max_length=5)
    limit: int = Field(default=100, ge=1, le=1000)


class RecordDeleteInput(_Input):
    pipeline_id: PipelineId
    record_id: RecordId


class AssigneeInput(_Input):
    user: Text | None = Field(default=None, min_length=1, max_length=320)
    role: Text | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _user_or_role(self) -> AssigneeInput:
        if (self.user is None) == (self.role is None):
            raise ValueError('an assignee is {"user": ...} or {"role": ...}')
        return self


class TaskNotifyInput(_Input):
    assignee: AssigneeInput
    title: Text = Field(min_length=1, max_length=500)
    message: Text = Field(default="", max_length=65_536)


class KafkaPublishInput(_Input):
    topic: str = Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")
    key: Text | None = Field(default=None, max_length=4096)
    headers: TextMap = Field(default_factory=dict)
    value: JsonValue = None


class CodeInput(_Input):
    code: str = Field(min_length=1, max_length=65_536)
    context: JsonObject = Field(default_factory=dict)
