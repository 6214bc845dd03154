"""A run's state, folded from its events."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import singledispatch
from typing import TypeVar
from uuid import UUID

from immutables import Map
from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_commands import ParentRun, TriggerData
from millrace_common.contracts.messages.run_events import (
    RUN_ENDED_STATUSES,
    AgentToolCallFinished,
    AgentToolCallScheduled,
    AgentTurnCompleted,
    AgentTurnRequested,
    ApprovalDecided,
    ApprovalRequested,
    ChildRunFinished,
    ChildRunRequested,
    ErrorWorkflowRequested,
    EventBuffered,
    EventTaken,
    ForEachItemCompleted,
    ForEachItemScheduled,
    NodeFailed,
    NodeRetryScheduled,
    NodeScheduled,
    NodeSkipped,
    NodeSucceeded,
    RecordWaitRegistered,
    RunCancelled,
    RunCompleted,
    RunContinued,
    RunEvent,
    RunFailed,
    RunPaused,
    RunRetried,
    RunStarted,
    RunStatus,
    RunThrottled,
    RunTimedOut,
    TimerFired,
    TimerScheduled,
    WebhookResponded,
)
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.workflow import WorkflowDefinition

from millrace_orchestrator.domain import agent_state
from millrace_orchestrator.domain.agent_state import AgentState

D = TypeVar("D")


def replace(instance: D, /, **changes: object) -> D:
    """``dataclasses.replace`` for the state's frozen dataclasses, which have no ``__post_init__`` and
    no init-only fields: a copy of the instance's attributes with the changes. ``dataclasses.replace``
    calls ``__init__`` and looks up the fields each time, a quarter of the core's time per event."""
    unknown = changes.keys() - type(instance).__dataclass_fields__.keys()  # type: ignore[attr-defined]
    if unknown:
        raise TypeError(f"{type(instance).__name__} has no field {', '.join(sorted(unknown))}")
    copy = object.__new__(type(instance))
    copy.__dict__.update(instance.__dict__)
    copy.__dict__.update(changes)
    return copy


class NodeStatus(StrEnum):
    PENDING = "pending"
    SCHEDULED = "scheduled"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"


TERMINAL_NODE_STATUSES = frozenset({NodeStatus.SUCCEEDED, NodeStatus.FAILED, NodeStatus.SKIPPED})
FINISHED_RUN_STATUSES = RUN_ENDED_STATUSES


@dataclass(frozen=True)
class NodeState:
    status: NodeStatus = NodeStatus.PENDING
    attempt: int = 0
    output: JsonObject | None = None
    error: NodeError | None = None
    taken_handles: tuple[str, ...] | None = None


@dataclass(frozen=True)
class LoopState:
    """A running for_each: its items, how far it got, and the results so far (by item index)."""

    items: tuple[object, ...]
    next_index: int = 0
    running: Map[int, bool] = field(default_factory=Map)
    results: Map[int, object] = field(default_factory=Map)
    failures: Map[int, NodeError] = field(default_factory=Map)

    @property
    def done(self) -> bool:
        return self.next_index >= len(self.items) and not self.running


@dataclass(frozen=True)
class ChildRun:
    """A run a sub_workflow node instance started (its latest attempt's)."""

    run_id: UUID
    attempt: int
    wait: bool
    finished: bool = False


@dataclass(frozen=True)
class RunState:
    run_id: UUID
    definition: WorkflowDefinition
    tenant_id: str = ""
    workflow_id: UUID | None = None
    workflow_version: int = 0
    status: RunStatus = RunStatus.NEW
    trigger: TriggerData | None = None
    # Node instances by key: the node id, plus ``[i]`` per enclosing for_each item (``body[3]``).
    # Persistent maps keep each event's cost independent of how long the run already is.
    nodes: Map[str, NodeState] = field(default_factory=Map)
    variables: Mapping[str, object] = field(default_factory=Map)
    timers: Map[UUID, TimerScheduled] = field(default_factory=Map)
    loops: Map[str, LoopState] = field(default_factory=Map)
    # The output of the top-level end node that finished last: the run's final output.
    final_output: JsonObject | None = None
    # The nodes a paused run waits on (their on_error is pause): a person retries or skips them.
    paused_nodes: tuple[str, ...] = ()
    last_seq: int = 0
    # The workflow's owner (the user who created it, when a person did; loaded with its definition):
    # who decides a run paused on an error.
    owner: str | None = None
    # Set when a sub_workflow node of another run started this one.
    parent: ParentRun | None = None
    # The child run of each sub_workflow node instance, by the instance's key.
    children: Map[str, ChildRun] = field(default_factory=Map)
    # Signals kept for wait_for_event nodes that accept earlier events, by event id.
    buffered: Map[UUID, EventBuffered] = field(default_factory=Map)
    # The loop of each ai_agent node instance, by the instance's key (its latest attempt's).
    agents: Map[str, AgentState] = field(default_factory=Map)

    def node(self, node_id: str) -> NodeState:
        return self.nodes.get(node_id, NodeState())

    def with_node(self, node_id: str, node: NodeState) -> RunState:
        return replace(self, nodes=self.nodes.set(node_id, node))

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
        parent=event.parent,
    )


@_apply.register
def _(event: NodeScheduled, state: RunState) -> RunState:
    scheduled = state.with_node(event.node_id, NodeState(status=NodeStatus.SCHEDULED, attempt=event.attempt))
    if event.node_type == "for_each":
        items = event.input.get("items")
        loop = LoopState(items=tuple(items) if isinstance(items, list) else ())
        return replace(scheduled, loops=scheduled.loops.set(event.node_id, loop))
    if event.node_type == agent_state.AGENT:
        agent = agent_state.started(event.attempt, event.input, event.occurred_at)
        return replace(scheduled, agents=scheduled.agents.set(event.node_id, agent))
    return scheduled


ATTEMPT_GUARDS = frozenset({"node_timeout", "agent_deadline"})
"""Timers that guard one attempt of a node and go when it settles (the projection deletes their rows)."""


def _without_timeout(state: RunState, node_id: str, attempt: int) -> RunState:
    """A settled attempt's timeout timer (or an agent's deadline) has nothing left to guard."""
    guards = [
        k
        for k, t in state.timers.items()
        if t.purpose in ATTEMPT_GUARDS and t.node_id == node_id and t.attempt == attempt
    ]
    if not guards:
        return state
    timers = state.timers.mutate()
    for k in guards:
        del timers[k]
    return replace(state, timers=timers.finish())


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
        return replace(succeeded, variables=succeeded.variables.update(event.output))
    if event.node_type == "end" and "[" not in event.node_id:
        return replace(succeeded, final_output=event.output)
    return succeeded


@_apply.register
def _(event: NodeFailed, state: RunState) -> RunState:
    state = _without_timeout(state, event.node_id, event.attempt)
    return state.with_node(
        event.node_id, NodeState(status=NodeStatus.FAILED, attempt=event.attempt, error=event.error)
    )


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
    return replace(state, timers=state.timers.set(event.timer_id, event))


@_apply.register
def _(event: TimerFired, state: RunState) -> RunState:
    return (
        replace(state, timers=state.timers.delete(event.timer_id))
        if event.timer_id in state.timers
        else state
    )


def _finish(state: RunState, status: RunStatus) -> RunState:
    """A finished run fires no timers (the shell deletes their rows in the same transaction)."""
    return replace(state, status=status, timers=Map(), paused_nodes=())


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
def _(event: RunPaused, state: RunState) -> RunState:
    return replace(state, status=RunStatus.PAUSED, paused_nodes=(*state.paused_nodes, event.node_id))


@_apply.register
def _(event: RunContinued, state: RunState) -> RunState:
    running = replace(state, status=RunStatus.RUNNING, paused_nodes=())
    if event.action == "retry":
        for node_id in event.node_ids:
            node = running.node(node_id)
            running = running.with_node(node_id, NodeState(status=NodeStatus.PENDING, attempt=node.attempt))
    return running


@_apply.register
def _(event: RunRetried, state: RunState) -> RunState:
    retried = {
        node_id: NodeState(status=NodeStatus.PENDING, attempt=state.node(node_id).attempt)
        for node_id in event.node_ids
    }
    nodes, loops = state.nodes, state.loops
    # A retried for_each runs its loop again from the start: its items' instances go with it.
    inside = {body.id for node_id in event.node_ids for body in _descendants(state.definition, node_id)}
    if inside:
        for key in [k for k in nodes if split_key(k)[0] in inside]:
            nodes = nodes.delete(key)
        for key in [k for k in loops if k in event.node_ids or split_key(k)[0] in inside]:
            loops = loops.delete(key)
    return replace(state, status=RunStatus.RUNNING, nodes=nodes.update(retried), loops=loops)


def _descendants(definition: WorkflowDefinition, node_id: str) -> list:
    found = []
    for body in definition.body(node_id):
        found += [body, *_descendants(definition, body.id)]
    return found


@_apply.register
def _(event: ForEachItemScheduled, state: RunState) -> RunState:
    loop = state.loops[event.node_id]
    started = replace(
        loop, next_index=max(loop.next_index, event.index + 1), running=loop.running.set(event.index, True)
    )
    return replace(state, loops=state.loops.set(event.node_id, started))


@_apply.register
def _(event: ForEachItemCompleted, state: RunState) -> RunState:
    loop = state.loops[event.node_id]
    running = loop.running.delete(event.index) if event.index in loop.running else loop.running
    if event.outcome == "succeeded":
        loop = replace(loop, running=running, results=loop.results.set(event.index, event.result))
    else:
        error = event.error or NodeError(
            type=NodeErrorType.ITEM_FAILED, message="the item failed", retryable=False
        )
        loop = replace(loop, running=running, failures=loop.failures.set(event.index, error))
    return replace(state, loops=state.loops.set(event.node_id, loop))


@_apply.register
def _(event: RunThrottled, state: RunState) -> RunState:
    return replace(
        state,
        tenant_id=event.tenant_id,
        workflow_id=event.workflow_id,
        workflow_version=event.workflow_version,
        status=RunStatus.THROTTLED,
        trigger=event.trigger,
    )


@_apply.register
def _(event: ApprovalRequested, state: RunState) -> RunState:
    return state


@_apply.register
def _(event: ApprovalDecided, state: RunState) -> RunState:
    key, step = agent_state.split_step(event.node_id)
    if step and key in state.agents and event.decision == "approved":
        return _with_agent(state, key, agent_state.call_approved(state.agents[key], event.node_id))
    return state


@_apply.register
def _(event: ChildRunRequested, state: RunState) -> RunState:
    child = ChildRun(event.child_run_id, event.attempt, wait=event.mode == "wait")
    return replace(state, children=state.children.set(event.node_id, child))


@_apply.register
def _(event: ChildRunFinished, state: RunState) -> RunState:
    child = state.children.get(event.node_id)
    if child is None or child.run_id != event.child_run_id:
        return state
    return replace(state, children=state.children.set(event.node_id, replace(child, finished=True)))


@_apply.register
def _(event: ErrorWorkflowRequested, state: RunState) -> RunState:
    return state


@_apply.register
def _(event: WebhookResponded, state: RunState) -> RunState:
    return state


@_apply.register
def _(event: RecordWaitRegistered, state: RunState) -> RunState:
    return state


@_apply.register
def _(event: EventBuffered, state: RunState) -> RunState:
    return replace(state, buffered=state.buffered.set(event.event_id, event))


@_apply.register
def _(event: EventTaken, state: RunState) -> RunState:
    if event.event_id not in state.buffered:
        return state
    return replace(state, buffered=state.buffered.delete(event.event_id))


def _with_agent(state: RunState, key: str, agent: AgentState) -> RunState:
    return replace(state, agents=state.agents.set(key, agent))


_AGENT_FOLDS = {
    AgentTurnRequested: agent_state.turn_requested,
    AgentTurnCompleted: agent_state.turn_completed,
    AgentToolCallScheduled: agent_state.call_scheduled,
    AgentToolCallFinished: agent_state.call_finished,
}
"""The agent events, each folded into its node instance's loop (an event of a loop the state does not
hold changes nothing)."""


def _fold_agent(event: RunEvent, state: RunState) -> RunState:
    agent = state.agents.get(event.node_id)  # type: ignore[attr-defined]
    if agent is None:
        return state
    return _with_agent(state, event.node_id, _AGENT_FOLDS[type(event)](agent, event))  # type: ignore[attr-defined, operator]


for _agent_event in _AGENT_FOLDS:
    _apply.register(_agent_event, _fold_agent)


def instance_key(node_id: str, scope: str) -> str:
    """A node instance: the node's id plus ``[i]`` for each enclosing for_each item."""
    return node_id + scope


def split_key(key: str) -> tuple[str, str]:
    """``body[3][1]`` -> (``body``, ``[3][1]``); a step of an agent's loop (``agent[3]#t2.0``) is its
    node instance's (``agent``, ``[3]``)."""
    key = key.partition(agent_state.STEP_MARK)[0]
    cut = key.find("[")
    return (key, "") if cut < 0 else (key[:cut], key[cut:])


def outer_scope(scope: str) -> tuple[str, int]:
    """``[3][1]`` -> (``[3]``, 1): the enclosing scope and the innermost item index."""
    cut = scope.rfind("[")
    return scope[:cut], int(scope[cut + 1 : -1])
