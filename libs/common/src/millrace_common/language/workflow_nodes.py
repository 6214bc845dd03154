"""The node types of the workflow language: a node model per type, in a union on ``type``, with
the runner class, category and source handles of each type. Configs are in ``workflow_configs``.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Annotated, Literal

from pydantic import Field, JsonValue

from millrace_common.contracts.topics import (
    NODES_READY_AI,
    NODES_READY_HTTP,
    NODES_READY_OTHER,
    NODES_READY_RECORD,
    Topic,
)
from millrace_common.language import workflow_configs
from millrace_common.language.workflow_configs import *
from millrace_common.language.workflow_configs import (
    AiAnalysisConfig,
    AiClassificationConfig,
    AiPromptConfig,
    ApprovalConfig,
    ConditionConfig,
    EndConfig,
    ForEachConfig,
    HttpRequestConfig,
    NodeConfig,
    RecordCreateConfig,
    RecordDeleteConfig,
    RecordFindConfig,
    RecordUpdateConfig,
    SetVariablesConfig,
    SwitchConfig,
    TaskNotifyConfig,
    TriggerConfig,
    WaitDelayConfig,
    WebhookOutConfig,
    _Frozen,
)

__all__ = [
    "CASE_HANDLE_PREFIX",
    "CONFIG_MODELS",
    "ERROR_HANDLE",
    "HANDLES",
    "HANDLE_REQUIRED",
    "NODE_CATEGORIES",
    "NODE_MODELS",
    "RUNNER_TOPICS",
    "AiAnalysisNode",
    "AiClassificationNode",
    "AiPromptNode",
    "ApprovalNode",
    "ConditionNode",
    "EndNode",
    "ForEachNode",
    "HttpRequestNode",
    "Node",
    "NodeId",
    "Position",
    "RecordCreateNode",
    "RecordDeleteNode",
    "RecordFindNode",
    "RecordUpdateNode",
    "SetVariablesNode",
    "SwitchNode",
    "TaskNotifyNode",
    "TriggerNode",
    "WaitDelayNode",
    "WebhookOutNode",
    "node_type_schemas",
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


class HttpRequestNode(_NodeBase):
    type: Literal["http_request"]
    data: HttpRequestConfig


class WebhookOutNode(_NodeBase):
    type: Literal["webhook_out"]
    data: WebhookOutConfig


class ApprovalNode(_NodeBase):
    type: Literal["approval"]
    data: ApprovalConfig


class TaskNotifyNode(_NodeBase):
    type: Literal["task_notify"]
    data: TaskNotifyConfig


Node = Annotated[
    TriggerNode
    | AiPromptNode
    | AiAnalysisNode
    | AiClassificationNode
    | RecordCreateNode
    | RecordUpdateNode
    | RecordFindNode
    | RecordDeleteNode
    | ConditionNode
    | SwitchNode
    | ForEachNode
    | WaitDelayNode
    | SetVariablesNode
    | EndNode
    | HttpRequestNode
    | WebhookOutNode
    | ApprovalNode
    | TaskNotifyNode,
    Field(discriminator="type"),
]

NODE_MODELS: dict[str, type[_NodeBase]] = {
    model.model_fields["type"].annotation.__args__[0]: model  # type: ignore[union-attr]
    for model in _NodeBase.__subclasses__()
}
CONFIG_MODELS: dict[str, type[NodeConfig]] = {
    node_type: model.model_fields["data"].annotation  # type: ignore[misc]
    for node_type, model in NODE_MODELS.items()
}

NODE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Triggers": ("trigger",),
    "AI": ("ai_prompt", "ai_analysis", "ai_classification"),
    "Records": ("record_create", "record_update", "record_find", "record_delete"),
    "Logic": ("condition", "switch", "for_each", "wait_delay", "set", "end"),
    "External": ("http_request", "webhook_out"),
    "Human": ("approval", "task_notify"),
}

# Which runner topic a side-effecting node type goes to; types not listed are evaluated by the
# orchestrator itself (approvals wait for the approval service's decision).
RUNNER_TOPICS: dict[str, Topic] = {
    "ai_prompt": NODES_READY_AI,
    "ai_analysis": NODES_READY_AI,
    "ai_classification": NODES_READY_AI,
    "http_request": NODES_READY_HTTP,
    "webhook_out": NODES_READY_HTTP,
    "record_create": NODES_READY_RECORD,
    "record_update": NODES_READY_RECORD,
    "record_find": NODES_READY_RECORD,
    "record_delete": NODES_READY_RECORD,
    "task_notify": NODES_READY_OTHER,
}

# -- handles ----------------------------------------------------------------------------------------

# The named source handles of each type; a switch also has ``case:<name>`` per case, and every node
# whose ``on_error`` is ``error_edge`` also has ``error``. Edges without a handle leave every node
# except the types in HANDLE_REQUIRED.
HANDLES: dict[str, frozenset[str]] = {node_type: frozenset() for node_type in NODE_MODELS} | {
    "condition": frozenset({"true", "false"}),
    "switch": frozenset({"default"}),
    "for_each": frozenset({"done"}),
    "approval": frozenset({"approved", "rejected", "timeout"}),
}
HANDLE_REQUIRED: frozenset[str] = frozenset({"condition", "switch", "approval"})


def source_handles(node: _NodeBase) -> frozenset[str]:
    """The ``sourceHandle`` values an edge leaving ``node`` may carry (besides none, where allowed)."""
    node_type: str = node.type  # type: ignore[attr-defined]
    config: NodeConfig = node.data  # type: ignore[attr-defined]
    handles = HANDLES[node_type]
    if isinstance(config, SwitchConfig):
        handles = handles | {f"{CASE_HANDLE_PREFIX}{case.name}" for case in config.cases}
    if config.on_error == "error_edge":
        handles = handles | {ERROR_HANDLE}
    return handles


def node_type_schemas() -> dict[str, dict[str, JsonValue]]:
    """The JSON Schema of each node type's ``data``, for the builder's forms."""
    return copy.deepcopy(_schemas())


@cache
def _schemas() -> dict[str, dict[str, JsonValue]]:
    return {node_type: model.model_json_schema(by_alias=True) for node_type, model in CONFIG_MODELS.items()}
