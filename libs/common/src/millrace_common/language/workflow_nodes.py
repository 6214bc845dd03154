"""The node types of the workflow language: the built-in types (a node model per type, declared
with its category, runner class, output and source handles as a :class:`NodeType`), the registry of
every installed type (:func:`node_types`: the built-in ones and those plugins add, see
``node_types``), and ``Node``, a node of any of them, validated by its ``type``. Configs are in
``workflow_configs``.
"""

from __future__ import annotations

import copy
from collections.abc import Hashable, Iterable, Mapping
from functools import cache
from importlib.metadata import EntryPoint
from typing import Annotated, Literal

from pydantic import Field, GetCoreSchemaHandler, GetJsonSchemaHandler, JsonValue, ValidationInfo
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, PydanticKnownError, core_schema

from millrace_common.contracts.topics import Topic
from millrace_common.language import workflow_configs
from millrace_common.language.node_outputs import NODE_OUTPUT_FIELDS
from millrace_common.language.node_types import (
    RUNNER_CLASSES,
    NodeType,
    NodeTypeError,
    NodeTypeRegistry,
    load_node_types,
)
from millrace_common.language.workflow_configs import *
from millrace_common.language.workflow_configs import (
    AiAgentConfig,
    AiAnalysisConfig,
    AiClassificationConfig,
    AiPromptConfig,
    ApprovalConfig,
    CodeConfig,
    ConditionConfig,
    EndConfig,
    ForEachConfig,
    HttpRequestConfig,
    KafkaPublishConfig,
    NodeConfig,
    RecordCreateConfig,
    RecordDeleteConfig,
    RecordFindConfig,
    RecordUpdateConfig,
    RespondToWebhookConfig,
    SetVariablesConfig,
    SubWorkflowConfig,
    SwitchConfig,
    TaskNotifyConfig,
    TriggerConfig,
    WaitDelayConfig,
    WaitForEventConfig,
    WebhookOutConfig,
    _Frozen,
)

__all__ = [
    "BUILTIN_NODE_TYPES",
    "CASE_HANDLE_PREFIX",
    "CONFIG_MODELS",
    "ERROR_HANDLE",
    "HANDLES",
    "HANDLE_REQUIRED",
    "NODE_CATEGORIES",
    "NODE_MODELS",
    "RUNNER_CLASSES",
    "RUNNER_TOPICS",
    "AiAnalysisNode",
    "AiClassificationNode",
    "AiPromptNode",
    "ApprovalNode",
    "CodeNode",
    "ConditionNode",
    "EndNode",
    "ForEachNode",
    "HttpRequestNode",
    "KafkaPublishNode",
    "Node",
    "NodeId",
    "NodeType",
    "NodeTypeError",
    "NodeTypeRegistry",
    "Position",
    "RecordCreateNode",
    "RecordDeleteNode",
    "RecordFindNode",
    "RecordUpdateNode",
    "SetVariablesNode",
    "SubWorkflowNode",
    "SwitchNode",
    "TaskNotifyNode",
    "TriggerNode",
    "WaitDelayNode",
    "WebhookOutNode",
    "load_registry",
    "node_catalog",
    "node_type_schemas",
    "node_types",
    "source_handles",
]
__all__ += workflow_configs.__all__

NodeId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
ERROR_HANDLE = "error"
CASE_HANDLE_PREFIX = "case:"


class Position(_Frozen):
    x: float = 0
    y: float = 0


# -- nodes ------------------------------------------------------------------------------------------


class _NodeBase(_Frozen):
    id: NodeId
    position: Position = Position()
    parent_id: NodeId | None = Field(default=None, alias="parentId")
    description: str | None = Field(
        default=None, max_length=2000, description="What the node is for, shown on the canvas; never rendered"
    )


class TriggerNode(_NodeBase):
    type: Literal["trigger"]
    data: TriggerConfig


class AiPromptNode(_NodeBase):
    type: Literal["ai_prompt"]
    data: AiPromptConfig


class AiAnalysisNode(_NodeBase):
    type: Literal["ai_analysis"]
    data: AiAnalysisConfig


class AiClassificationNode(_NodeBase):
    type: Literal["ai_classification"]
    data: AiClassificationConfig


class AiAgentNode(_NodeBase):
    type: Literal["ai_agent"]
    data: AiAgentConfig


class RecordCreateNode(_NodeBase):
    type: Literal["record_create"]
    data: RecordCreateConfig


class RecordUpdateNode(_NodeBase):
    type: Literal["record_update"]
    data: RecordUpdateConfig


class RecordFindNode(_NodeBase):
    type: Literal["record_find"]
    data: RecordFindConfig


class RecordDeleteNode(_NodeBase):
    type: Literal["record_delete"]
    data: RecordDeleteConfig


class ConditionNode(_NodeBase):
    type: Literal["condition"]
    data: ConditionConfig


class SwitchNode(_NodeBase):
    type: Literal["switch"]
    data: SwitchConfig


class ForEachNode(_NodeBase):
    type: Literal["for_each"]
    data: ForEachConfig


class WaitDelayNode(_NodeBase):
    type: Literal["wait_delay"]
    data: WaitDelayConfig


class SetVariablesNode(_NodeBase):
    type: Literal["set"]
    data: SetVariablesConfig


class EndNode(_NodeBase):
    type: Literal["end"]
    data: EndConfig


class SubWorkflowNode(_NodeBase):
    type: Literal["sub_workflow"]
    data: SubWorkflowConfig


class HttpRequestNode(_NodeBase):
    type: Literal["http_request"]
    data: HttpRequestConfig


class WebhookOutNode(_NodeBase):
    type: Literal["webhook_out"]
    data: WebhookOutConfig


class KafkaPublishNode(_NodeBase):
    type: Literal["kafka_publish"]
    data: KafkaPublishConfig


class ApprovalNode(_NodeBase):
    type: Literal["approval"]
    data: ApprovalConfig


class TaskNotifyNode(_NodeBase):
    type: Literal["task_notify"]
    data: TaskNotifyConfig


class WaitForEventNode(_NodeBase):
    type: Literal["wait_for_event"]
    data: WaitForEventConfig


class RespondToWebhookNode(_NodeBase):
    type: Literal["respond_to_webhook"]
    data: RespondToWebhookConfig


class CodeNode(_NodeBase):
    type: Literal["code"]
    data: CodeConfig


# -- the registry ------------------------------------------------------------------------------------

_FAMILIES: tuple[tuple[str, str | None, tuple[type[_NodeBase], ...]], ...] = (
    ("Triggers", None, (TriggerNode,)),
    ("AI", "ai", (AiPromptNode, AiAnalysisNode, AiClassificationNode, AiAgentNode)),
    ("Records", "record", (RecordCreateNode, RecordUpdateNode, RecordFindNode, RecordDeleteNode)),
    (
        "Logic",
        None,
        (ConditionNode, SwitchNode, ForEachNode, WaitDelayNode, SetVariablesNode, EndNode),
    ),
    ("Flow", None, (SubWorkflowNode,)),
    ("External", "http", (HttpRequestNode, WebhookOutNode)),
    ("Kafka", "other", (KafkaPublishNode,)),
    ("Human", None, (ApprovalNode,)),
    ("Human", "other", (TaskNotifyNode,)),
    ("Logic", None, (WaitForEventNode,)),
    ("External", None, (RespondToWebhookNode,)),
    ("Logic", "code", (CodeNode,)),
)

# The named source handles of each type; a switch also has ``case:<name>`` per case, and every node
# whose ``on_error`` is ``error_edge`` also has ``error``. Edges without a handle leave every node
# except the types whose handle is required.
_NAMED_HANDLES: dict[str, frozenset[str]] = {
    "condition": frozenset({"true", "false"}),
    "switch": frozenset({"default"}),
    "for_each": frozenset({"done"}),
    "approval": frozenset({"approved", "rejected", "timeout"}),
    "wait_for_event": frozenset({"event", "timeout"}),
}
_HANDLE_REQUIRED = frozenset({"condition", "switch", "approval", "wait_for_event"})


def _node_type_name(model: type[_NodeBase]) -> str:
    return model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr, no-any-return]


BUILTIN_NODE_TYPES: tuple[NodeType, ...] = tuple(
    NodeType(
        type=(name := _node_type_name(model)),
        config=model.model_fields["data"].annotation,  # type: ignore[arg-type]
        category=category,
        runner_class=runner_class,
        outputs=NODE_OUTPUT_FIELDS[name],
        handles=_NAMED_HANDLES.get(name, frozenset()),
        handle_required=name in _HANDLE_REQUIRED,
    )
    for category, runner_class, models in _FAMILIES
    for model in models
)
"""The built-in node types, declared as a plugin declares its own; :func:`node_types` registers them
first. The constants below are views of these (the built-in types only)."""

NODE_MODELS: dict[str, type[_NodeBase]] = {
    _node_type_name(model): model for _, _, models in _FAMILIES for model in models
}
CONFIG_MODELS: dict[str, type[NodeConfig]] = {t.type: t.config for t in BUILTIN_NODE_TYPES}
NODE_CATEGORIES: dict[str, tuple[str, ...]] = {}
for _type in BUILTIN_NODE_TYPES:
    NODE_CATEGORIES[_type.category] = (*NODE_CATEGORIES.get(_type.category, ()), _type.type)

# Which runner topic a side-effecting built-in type goes to; types not listed are evaluated by the
# orchestrator itself (approvals wait for the approval service's decision).
RUNNER_TOPICS: dict[str, Topic] = {
    t.type: topic for t in BUILTIN_NODE_TYPES if (topic := t.runner_topic) is not None
}

# -- handles ----------------------------------------------------------------------------------------

HANDLES: dict[str, frozenset[str]] = {t.type: t.handles for t in BUILTIN_NODE_TYPES}
HANDLE_REQUIRED: frozenset[str] = frozenset(t.type for t in BUILTIN_NODE_TYPES if t.handle_required)

_installed: NodeTypeRegistry | None = None


def load_registry(entry_points: Iterable[EntryPoint] | None = None) -> NodeTypeRegistry:
    """The built-in types and the installed plugins' (or those of ``entry_points``), loaded now."""
    return load_node_types(
        BUILTIN_NODE_TYPES, node_models=NODE_MODELS, model_base=_NodeBase, entry_points=entry_points
    )


def node_types() -> NodeTypeRegistry:
    """Every node type this process knows: the built-in ones, then each installed plugin's (the
    ``millrace.nodes`` entry points), loaded at the first call."""
    global _installed
    if _installed is None:
        _installed = load_registry()
    return _installed


async def require_node_types() -> None:
    """A start check (``ServiceParts.start_checks``) for every service that validates or runs
    workflows: the registry loads, or the process stops at start naming the plugin at fault, instead
    of failing every request or message that meets a definition."""
    node_types()


def _validate_node(value: object, info: ValidationInfo) -> _NodeBase:
    """A node validated with its type's model, the type looked up in :func:`node_types` (so a
    plugin's types validate like the built-in ones); the errors are those of a union on ``type``."""
    if isinstance(value, _NodeBase):
        return value
    if not isinstance(value, Mapping):
        raise PydanticKnownError("model_attributes_type")
    if "type" not in value:
        raise PydanticKnownError("union_tag_not_found", {"discriminator": "'type'"})
    registry = node_types()
    tag = value["type"]
    model = registry.node_model(tag) if isinstance(tag, str) else None
    if model is None:
        expected = ", ".join(repr(name) for name in registry.names)
        raise PydanticKnownError(
            "union_tag_invalid", {"discriminator": "'type'", "tag": str(tag), "expected_tags": expected}
        )
    validated: _NodeBase = model.__pydantic_validator__.validate_python(value, context=info.context)
    return validated


class _ByType:
    """The schema of ``Node``: validated by :func:`_validate_node`, described as the union of the
    installed types' models (the registry is read when a JSON Schema is asked for, not before)."""

    def __get_pydantic_core_schema__(self, source: object, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.with_info_plain_validator_function(_validate_node)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        registry = node_types()
        choices: dict[Hashable, CoreSchema] = {}
        for name in registry.names:
            model = registry.node_model(name)
            assert model is not None
            choices[name] = model.__pydantic_core_schema__
        return handler(core_schema.tagged_union_schema(choices, discriminator="type"))


Node = Annotated[_NodeBase, _ByType()]
"""A node of any type :func:`node_types` knows."""


def source_handles(node: _NodeBase) -> frozenset[str]:
    """The ``sourceHandle`` values an edge leaving ``node`` may carry (besides none, where allowed)."""
    node_type: str = node.type  # type: ignore[attr-defined]
    config: NodeConfig = node.data  # type: ignore[attr-defined]
    handles = node_types().types[node_type].handles
    if isinstance(config, SwitchConfig):
        handles = handles | {f"{CASE_HANDLE_PREFIX}{case.name}" for case in config.cases}
    if config.on_error == "error_edge":
        handles = handles | {ERROR_HANDLE}
    return handles


def node_type_schemas() -> dict[str, dict[str, JsonValue]]:
    """The JSON Schema of each built-in node type's ``data``."""
    return copy.deepcopy(_schemas(tuple(CONFIG_MODELS.items())))


def node_catalog() -> list[dict[str, JsonValue]]:
    """Every node type :func:`node_types` knows, in palette order, with its category and the JSON
    Schema of its ``data``: what the builder draws its palette and forms from."""
    registry = node_types()
    schemas = _schemas(tuple((t.type, t.config) for t in registry))
    return [
        {"type": node_type, "category": category, "schema": copy.deepcopy(schemas[node_type])}
        for category, types in registry.categories().items()
        for node_type in types
    ]


@cache
def _schemas(configs: tuple[tuple[str, type[NodeConfig]], ...]) -> dict[str, dict[str, JsonValue]]:
    return {node_type: model.model_json_schema(by_alias=True) for node_type, model in configs}
