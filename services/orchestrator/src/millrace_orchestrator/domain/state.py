"""A run's state, folded from its events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import singledispatch
from types import MappingProxyType
from uuid import UUID

from millrace_common.messages.envelope import JsonObject
from millrace_common.messages.node_commands import NodeError
from millrace_common.messages.run_commands import TriggerData
from millrace_common.messages.run_events import (
    NodeFailed,
    NodeRetryScheduled,
    NodeScheduled,
    NodeSkipped,
    NodeSucceeded,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunRetried,
    RunStarted,
    RunTimedOut,
    TimerFired,
    TimerScheduled,
)
from millrace_common.workflow import WorkflowDefinition


class RunStatus(StrEnum):
    NEW = "new"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"


class NodeStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


TERMINAL_NODE_STATUSES = frozenset({NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED})
FINISHED_RUN_STATUSES = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMED_OUT})


@dataclass(frozen=True)
class NodeState:
    status: NodeStatus = NodeStatus.PENDING
    attempt: int = 0
    output: JsonObject | None = None
    error: NodeError | None = None
    taken_handles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class RunState:
    run_id: UUID
    definition: WorkflowDefinition
    tenant_id: str = ""
    workflow_id: UUID | None = None
    workflow_version: int = 0
    status: RunStatus = RunStatus.NEW
    trigger: TriggerData | None = None
    nodes: Mapping[str, NodeState] = field(default_factory=lambda: MappingProxyType({}))
    variables: Mapping[str, object] = field(default_factory=lambda: MappingProxyType({}))
    timers: Mapping[UUID, TimerScheduled] = field(default_factory=lambda: MappingProxyType({}))
    last_seq: int = 0

    def node(self, node_id: str) -> NodeState:
        return self.nodes.get(node_id, NodeState())

    def with_node(self, node_id: str, node: NodeState) -> RunState:
        return replace(self, nodes=MappingProxyType({**self.nodes, node_id: node}))

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES


def evolve(state: RunState, event: RunEvent) -> RunState:
    """The state after ``event``; the only way state changes."""
    return replace(_apply(event, state), last_seq=max(state.last_seq, event.seq))


@singledispatch
def _apply(event: RunEvent, state: RunState) -> RunState:
    raise TypeError(f"no fold for {type(event).__name__}")


@_apply.register
def _(event: RunStarted, state: RunState) -> RunState:
    return replace(
        state,
        tenant_id=event.tenant_id,
        workflow_id=event.workflow_id,
        workflow_version=event.workflow_version,
        status=RunStatus.RUNNING,
        trigger=event.trigger,
    )


@_apply.register
def _(event: NodeScheduled, state: RunState) -> RunState:
    return state.with_node(event.node_id, NodeState(status=NodeStatus.SCHEDULED, attempt=event.attempt))


def _without_timeout(state: RunState, node_id: str, attempt: int) -> RunState:
    """A settled attempt's timeout timer has nothing left to guard."""
    kept = {
        k: t
        for k, t in state.timers.items()
        if not (t.purpose == "node_timeout" and t.node_id == node_id and t.attempt == attempt)
    }
    return replace(state, timers=MappingProxyType(kept)) if len(kept) != len(state.timers) else state


@_apply.register
def _(event: NodeSucceeded, state: RunState) -> RunState:
    state = _without_timeout(state, event.node_id, event.attempt)
    succeeded = state.with_node(
        event.node_id,
        NodeState(
            status=NodeStatus.SUCCEEDED,
            attempt=event.attempt,
            output=event.output,
            taken_handles=event.taken_handles,
        ),
    )
    if event.node_type == "set":
        return replace(succeeded, variables=MappingProxyType({**state.variables, **event.output}))
    return succeeded


@_apply.register
def _(event: NodeFailed, state: RunState) -> RunState:
    state = _without_timeout(state, event.node_id, event.attempt)
    return state.with_node(event.node_id, NodeState(status=NodeStatus.FAILED, attempt=event.attempt, error=event.error))


@_apply.register
def _(event: NodeRetryScheduled, state: RunState) -> RunState:
    state = _without_timeout(state, event.node_id, event.attempt)
    return state.with_node(
        event.node_id, NodeState(status=NodeStatus.RETRYING, attempt=event.attempt, error=event.error)
    )


@_apply.register
def _(event: NodeSkipped, state: RunState) -> RunState:
    return state.with_node(event.node_id, NodeState(status=NodeStatus.SKIPPED))


@_apply.register
def _(event: TimerScheduled, state: RunState) -> RunState:
    return replace(state, timers=MappingProxyType({**state.timers, event.timer_id: event}))


@_apply.register
def _(event: TimerFired, state: RunState) -> RunState:
    return replace(state, timers=MappingProxyType({k: v for k, v in state.timers.items() if k != event.timer_id}))


def _finish(state: RunState, status: RunStatus) -> RunState:
    """A finished run fires no timers (the shell deletes their rows in the same transaction)."""
    return replace(state, status=status, timers=MappingProxyType({}))


@_apply.register
def _(event: RunCompleted, state: RunState) -> RunState:
    return _finish(state, RunStatus.COMPLETED)


@_apply.register
def _(event: RunFailed, state: RunState) -> RunState:
    return _finish(state, RunStatus.FAILED)


@_apply.register
def _(event: RunTimedOut, state: RunState) -> RunState:
    return _finish(state, RunStatus.TIMED_OUT)


@_apply.register
def _(event: RunCancelled, state: RunState) -> RunState:
    return _finish(state, RunStatus.CANCELLED)


@_apply.register
def _(event: RunRetried, state: RunState) -> RunState:
    retried = {
        node_id: NodeState(status=NodeStatus.PENDING, attempt=state.node(node_id).attempt) for node_id in event.node_ids
    }
    return replace(state, status=RunStatus.RUNNING, nodes=MappingProxyType({**state.nodes, **retried}))
