"""The config of each node type (a node's ``data``), with the rules each config must follow.

Every config has a ``name`` and the shared execution policy (``retry``, ``timeout_seconds``,
``on_error``). Strings in a config are templates unless the config lists the field in
``literal_fields``; :meth:`NodeConfig.rendered_strings` yields the ones that are rendered.
``docs/node-reference.md`` describes every field.

One module a family: ``base`` (the field types, the execution policy and ``NodeConfig``), ``triggers``,
``ai``, ``agent`` (the AI agent and its tools), ``records``, ``logic`` (logic and control), ``external``
(HTTP and outgoing webhooks), ``flow`` (sub-workflows), ``kafka`` (publishing), ``human`` (approvals and
tasks) and ``code`` (the code node).
Import the names from this package.
"""

from __future__ import annotations

from millrace_common.language.workflow_configs.agent import (
    AgentTool,
    AiAgentConfig,
    HttpTool,
    RecordTools,
    WorkflowTool,
)
from millrace_common.language.workflow_configs.ai import (
    AiAnalysisConfig,
    AiClassificationConfig,
    AiPromptConfig,
)
from millrace_common.language.workflow_configs.base import (
    CHECK_ERROR_TYPES,
    CredentialName,
    NodeConfig,
    PipelineId,
    RetryPolicy,
    comparisons,
)

# Outside __all__, yet imported from here: the JSON path type (workflow_graph) and the shared frozen
# base model (workflow, workflow_nodes).
from millrace_common.language.workflow_configs.base import Path as Path
from millrace_common.language.workflow_configs.base import _Frozen as _Frozen
from millrace_common.language.workflow_configs.code import CODE_CONTEXT_NAMES, CodeConfig, code_problem
from millrace_common.language.workflow_configs.external import HttpAuth, HttpRequestConfig, WebhookOutConfig
from millrace_common.language.workflow_configs.flow import SubWorkflowConfig, SubWorkflowMode
from millrace_common.language.workflow_configs.human import ApprovalConfig, Assignee, TaskNotifyConfig
from millrace_common.language.workflow_configs.kafka import KafkaPublishConfig
from millrace_common.language.workflow_configs.logic import (
    ConditionConfig,
    EndConfig,
    ForEachConfig,
    SetVariablesConfig,
    SwitchCase,
    SwitchConfig,
    WaitDelayConfig,
)
from millrace_common.language.workflow_configs.records import (
    RecordCreateConfig,
    RecordDeleteConfig,
    RecordFindConfig,
    RecordUpdateConfig,
    SortKey,
)
from millrace_common.language.workflow_configs.triggers import (
    LEGACY_SCHEDULE_NAME,
    Schedule,
    TriggerConfig,
    TriggerKind,
    WatchedField,
    check_cron,
)
from millrace_common.language.workflow_configs.waits import RespondToWebhookConfig, WaitForEventConfig

__all__ = [
    "CHECK_ERROR_TYPES",
    "CODE_CONTEXT_NAMES",
    "LEGACY_SCHEDULE_NAME",
    "AgentTool",
    "AiAgentConfig",
    "AiAnalysisConfig",
    "AiClassificationConfig",
    "AiPromptConfig",
    "ApprovalConfig",
    "Assignee",
    "CodeConfig",
    "ConditionConfig",
    "CredentialName",
    "EndConfig",
    "ForEachConfig",
    "HttpAuth",
    "HttpRequestConfig",
    "HttpTool",
    "KafkaPublishConfig",
    "NodeConfig",
    "PipelineId",
    "RecordCreateConfig",
    "RecordDeleteConfig",
    "RecordFindConfig",
    "RecordTools",
    "RecordUpdateConfig",
    "RespondToWebhookConfig",
    "RetryPolicy",
    "Schedule",
    "SetVariablesConfig",
    "SortKey",
    "SubWorkflowConfig",
    "SubWorkflowMode",
    "SwitchCase",
    "SwitchConfig",
    "TaskNotifyConfig",
    "TriggerConfig",
    "TriggerKind",
    "WaitDelayConfig",
    "WaitForEventConfig",
    "WatchedField",
    "WebhookOutConfig",
    "WorkflowTool",
    "check_cron",
    "code_problem",
    "comparisons",
]
