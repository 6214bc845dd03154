"""The error types a node can fail with: the one list of names that node errors carry, that
``retry.retry_on`` may list and that error edges and conditions compare ``nodes.<id>.error.type``
with. Every producer (the node runner, the orchestrator) takes its names from here, and
``docs/node-reference.md`` lists each with what causes it (a unit test holds the two together).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RENAMED_ERROR_TYPES", "RETRY_EVERY_TYPE", "NodeErrorType"]


class NodeErrorType(StrEnum):
    """One name per cause. Values are what ``NodeError.type`` holds on the wire and in the run log."""

    # -- the node runner ---------------------------------------------------------------------------
    INVALID_INPUT = "invalid_input"
    UNSUPPORTED_NODE = "unsupported_node"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    HTTP_STATUS = "http_status"
    TARGET_NOT_ALLOWED = "target_not_allowed"
    INVALID_URL = "invalid_url"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    CREDENTIAL_NOT_FOUND = "credential_not_found"
    CREDENTIAL_MISMATCH = "credential_mismatch"
    CREDENTIAL_UNREADABLE = "credential_unreadable"
    SECRETS_UNAVAILABLE = "secrets_unavailable"
    AI_NOT_CONFIGURED = "ai_not_configured"
    AI_BUDGET_EXCEEDED = "ai_budget_exceeded"
    AI_INVALID_ANSWER = "ai_invalid_answer"
    AI_STATUS = "ai_status"
    AI_ERROR = "ai_error"
    AGENT_LIMIT = "agent_limit"
    NOT_FOUND = "not_found"
    CAUSATION_DEPTH_EXCEEDED = "causation_depth_exceeded"
    TOO_MANY_RECORDS = "too_many_records"
    TOPIC_NOT_GRANTED = "topic_not_granted"
    KAFKA_PUBLISH = "kafka_publish"
    RUNNER_ERROR = "runner_error"
    # -- the code node's sandbox (also when testing a node at the gateway) --------------------------
    CODE_ERROR = "code_error"
    CODE_SYNTAX = "code_syntax"
    CODE_FORBIDDEN = "code_forbidden"
    CODE_TIMEOUT = "code_timeout"
    CODE_MEMORY_LIMIT = "code_memory_limit"
    CODE_RECURSION_LIMIT = "code_recursion_limit"
    CODE_OUTPUT = "code_output"
    CODE_CRASHED = "code_crashed"
    # -- both: a condition (condition and switch nodes, record_find filters) cannot be evaluated ---
    CONDITION = "condition"
    # -- both: a node's input or output is larger than a message may carry (contracts.limits) --
    TOO_LARGE = "too_large"
    # -- the orchestrator --------------------------------------------------------------------------
    TEMPLATE = "template"
    ITEM_FAILED = "item_failed"
    # -- the orchestrator: sub_workflow nodes ------------------------------------------------------
    SUB_WORKFLOW_FAILED = "sub_workflow_failed"
    SUB_WORKFLOW_INPUT = "sub_workflow_input"
    SUB_WORKFLOW_NOT_FOUND = "sub_workflow_not_found"
    SUB_WORKFLOW_DEPTH = "sub_workflow_depth_exceeded"
    SUB_WORKFLOW_CYCLE = "sub_workflow_cycle"
    NOT_A_WEBHOOK_RUN = "not_a_webhook_run"


RETRY_EVERY_TYPE = "*"
"""``retry_on: ["*"]`` retries every retryable error, whatever its type."""

RENAMED_ERROR_TYPES: dict[str, NodeErrorType] = {
    "templateerror": NodeErrorType.TEMPLATE,
    "conditionerror": NodeErrorType.CONDITION,
    "unsupported": NodeErrorType.UNSUPPORTED_NODE,
}
"""Names the orchestrator produced before the list above was the only source (see CHANGELOG.md);
a definition submitted with one in ``retry_on`` is told the current name."""
