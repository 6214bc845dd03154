"""A node's outcomes: a result for its current attempt, success, failure (retried by policy, else
handled by its on-error mode) and a refusal before it runs."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from millrace_common.contracts.messages.node_commands import NodeError, NodeFailedResult, NodeSucceededResult
from millrace_common.contracts.messages.run_events import (
    NodeFailed,
    NodeRetryScheduled,
    NodeSucceeded,
    RunFailed,
    RunPaused,
)
from millrace_common.contracts.node_errors import RETRY_EVERY_TYPE, NodeErrorType
from millrace_common.language.conditions import ConditionError
from millrace_common.language.workflow import Node, RetryPolicy
from pydantic import JsonValue

from millrace_orchestrator.domain.building import _Builder
from millrace_orchestrator.domain.rendering import PayloadTooLarge
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, instance_key, split_key

_TAKES_RESULTS = frozenset({RunStatus.RUNNING, RunStatus.PAUSED})


def _is_current_attempt(state: RunState, message: NodeSucceededResult | NodeFailedResult) -> bool:
    node_id, _ = split_key(message.node_id)
    # A paused run still takes its other nodes' results: it only starts nothing new until it goes on.
    if state.status not in _TAKES_RESULTS or node_id not in {n.id for n in state.definition.nodes}:
        return False
    node = state.node(message.node_id)
    return node.status is NodeStatus.SCHEDULED and node.attempt == message.attempt


def _succeed(
    builder: _Builder,
    node: Node,
    scope: str,
    attempt: int,
    output: dict[str, JsonValue],
    *,
    handles: tuple[str, ...] | None = None,
    duration_ms: float = 0.0,
) -> None:
    builder.emit(
        NodeSucceeded,
        node_id=instance_key(node.id, scope),
        node_type=node.type,
        attempt=attempt,
        output=output,
        duration_ms=duration_ms,
        taken_handles=handles,
    )


def _fail(
    builder: _Builder, node: Node, scope: str, attempt: int, error: NodeError, *, duration_ms: float = 0.0
) -> None:
    """A failed attempt: retried by policy, else handled by the node's on-error mode. Inside a
    for_each body an unhandled failure fails the item, which the loop's failure policy handles."""
    key = instance_key(node.id, scope)
    policy = retry_policy(builder.state, node)
    if error.retryable and attempt < policy.max_attempts and _retries(policy, error.type):
        retry_at = builder.now + backoff(policy, attempt, builder.new_id())
        builder.emit(
            NodeRetryScheduled,
            node_id=key,
            node_type=node.type,
            attempt=attempt,
            error=error,
            retry_at=retry_at,
        )
        builder.timer("retry", retry_at, key, attempt)
        return
    if node.data.on_error == "fallback" and node.data.fallback_output is not None:
        _succeed(builder, node, scope, attempt, node.data.fallback_output, duration_ms=duration_ms)
        return
    builder.emit(
        NodeFailed, node_id=key, node_type=node.type, attempt=attempt, error=error, duration_ms=duration_ms
    )
    if node.data.on_error == "pause" and not scope:
        builder.emit(
            RunPaused, node_id=key, reason=f"node {key!r} failed: {error.message}", notify=_owner(builder)
        )
        return
    if node.data.on_error != "error_edge" and not scope:
        builder.emit(RunFailed, reason=f"node {key!r} failed: {error.message}", failed_node_id=key)


def _owner(builder: _Builder) -> dict[str, JsonValue]:
    """Who decides a paused run: the workflow's owner (the person who created it), else the person who
    started the run, else the tenant's admins."""
    if builder.state.owner:
        return {"user": builder.state.owner}
    trigger = builder.state.trigger
    if trigger is not None and trigger.started_by:
        return {"user": trigger.started_by}
    return {"role": "admin"}


def retry_policy(state: RunState, node: Node) -> RetryPolicy:
    """The node's own policy when it sets one, else the workflow's ``retry_count`` with default back-off."""
    return node.data.retry or RetryPolicy(max_attempts=state.definition.settings.retry_count + 1)


def _retries(policy: RetryPolicy, error_type: str) -> bool:
    return RETRY_EVERY_TYPE in policy.retry_on or error_type in policy.retry_on


def backoff(policy: RetryPolicy, attempt: int, entropy: UUID) -> timedelta:
    """Exponential back-off with ±20 % jitter (drawn from ``entropy`` so decisions stay pure)."""
    base = min(
        policy.max_backoff_seconds, policy.backoff_seconds * policy.backoff_multiplier ** (attempt - 1)
    )
    jitter = 0.8 + (entropy.int % 10_000) / 10_000 * 0.4
    return timedelta(seconds=base * jitter)


def _refuse(builder: _Builder, node: Node, scope: str, attempt: int, problem: Exception) -> None:
    message = str(problem)
    if isinstance(problem, ConditionError):
        error = NodeError(type=NodeErrorType.CONDITION, message=message, retryable=False)
    elif isinstance(problem, PayloadTooLarge):
        error = NodeError(type=NodeErrorType.TOO_LARGE, message=message, retryable=False)
    else:
        error = NodeError(type=NodeErrorType.TEMPLATE, message=message, retryable=False)
    _fail(builder, node, scope, attempt, error)
