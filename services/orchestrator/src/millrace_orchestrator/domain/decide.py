"""Decisions: what happens to a run when a message arrives. Pure: the clock and ids come in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from pydantic import JsonValue

from millrace_common.messages.node_commands import ExecuteNode, NodeError, NodeFailedResult, NodeSucceededResult
from millrace_common.messages.run_commands import CancelRun, RetryRun, StartRun
from millrace_common.messages.run_events import (
    NodeFailed,
    NodeScheduled,
    NodeSkipped,
    NodeSucceeded,
    RunCompleted,
    RunEvent,
    RunCancelled,
    RunFailed,
    RunRetried,
    RunStarted,
)
from millrace_common.outbox import Outgoing
from millrace_common.templating import TemplateError, render_value
from millrace_common.workflow import RUNNER_TOPICS, Edge, Node

from millrace_orchestrator.domain.state import TERMINAL_NODE_STATUSES, NodeStatus, RunState, RunStatus, evolve

Message = StartRun | CancelRun | RetryRun | NodeSucceededResult | NodeFailedResult
ERROR_HANDLE = "error"


@dataclass(frozen=True)
class Decision:
    events: tuple[RunEvent, ...] = ()
    commands: tuple[Outgoing, ...] = ()
    state: RunState | None = field(default=None, compare=False)


class _Builder:
    """Accumulates events, folding each into the state so later decisions see earlier ones."""

    def __init__(self, state: RunState, message: Message, now: datetime, new_id: Callable[[], UUID]) -> None:
        self.state = state
        self.events: list[RunEvent] = []
        self.commands: list[Outgoing] = []
        self._message = message
        self._now = now
        self._new_id = new_id

    def emit(self, event_type: type[RunEvent], **fields: object) -> None:
        event = event_type(
            message_id=self._new_id(),
            tenant_id=self.state.tenant_id or self._message.tenant_id,
            occurred_at=self._now,
            correlation_id=self.state.run_id,
            causation_id=self._message.message_id,
            run_id=self.state.run_id,
            seq=self.state.last_seq + 1,
            **fields,
        )
        self.events.append(event)
        self.state = evolve(self.state, event)

    def command(self, outgoing: Outgoing) -> None:
        self.commands.append(outgoing)

    def decision(self) -> Decision:
        return Decision(tuple(self.events), tuple(self.commands), self.state)

    @property
    def now(self) -> datetime:
        return self._now

    def new_id(self) -> UUID:
        return self._new_id()

    @property
    def message(self) -> Message:
        return self._message


def decide(state: RunState, message: Message, *, now: datetime, new_id: Callable[[], UUID]) -> Decision:
    """Events and commands that follow from ``message``; a message that changes nothing yields none."""
    builder = _Builder(state, message, now, new_id)
    if isinstance(message, StartRun):
        if state.status is not RunStatus.NEW:
            return Decision()
        builder.emit(
            RunStarted,
            workflow_id=message.workflow_id,
            workflow_version=message.workflow_version,
            trigger=message.trigger,
        )
        trigger = state.definition.trigger
        builder.emit(
            NodeSucceeded,
            node_id=trigger.id,
            node_type=trigger.type,
            attempt=1,
            output={"kind": message.trigger.kind, "data": message.trigger.data},
            duration_ms=0.0,
        )
    elif isinstance(message, CancelRun):
        if state.status is not RunStatus.RUNNING:
            return Decision()
        builder.emit(RunCancelled, reason=message.reason, requested_by=message.requested_by)
        return builder.decision()
    elif isinstance(message, RetryRun):
        failed = tuple(n.id for n in state.definition.nodes if state.node(n.id).status is NodeStatus.FAILED)
        if state.status is not RunStatus.FAILED or not failed:
            return Decision()
        builder.emit(RunRetried, node_ids=failed, requested_by=message.requested_by)
    elif not _is_current_attempt(state, message):
        return Decision()
    elif isinstance(message, NodeSucceededResult):
        node = state.definition.node(message.node_id)
        builder.emit(
            NodeSucceeded,
            node_id=node.id,
            node_type=node.type,
            attempt=message.attempt,
            output=message.output,
            duration_ms=message.duration_ms,
        )
    else:
        node = state.definition.node(message.node_id)
        builder.emit(
            NodeFailed,
            node_id=node.id,
            node_type=node.type,
            attempt=message.attempt,
            error=message.error,
            duration_ms=message.duration_ms,
        )
        builder.emit(RunFailed, reason=f"node {node.id!r} failed: {message.error.message}", failed_node_id=node.id)
        return builder.decision()
    _advance(builder)
    return builder.decision()


def _is_current_attempt(state: RunState, message: NodeSucceededResult | NodeFailedResult) -> bool:
    if state.status is not RunStatus.RUNNING or message.node_id not in {n.id for n in state.definition.nodes}:
        return False
    node = state.node(message.node_id)
    return node.status is NodeStatus.SCHEDULED and node.attempt == message.attempt


def _advance(builder: _Builder) -> None:
    """Start every node whose inputs are all settled, skip the ones no live edge reaches, and
    finish the run when nothing is left to do (dead-path elimination: joins never hang)."""
    definition = builder.state.definition
    progressed = True
    while progressed and builder.state.status is RunStatus.RUNNING:
        progressed = False
        for node in definition.nodes:
            if builder.state.node(node.id).status is not NodeStatus.PENDING:
                continue
            edges = [_edge_state(builder.state, edge) for edge in definition.incoming(node.id)]
            if not edges or "open" in edges:
                continue
            progressed = True
            if "taken" in edges:
                _start(builder, node)
            else:
                builder.emit(NodeSkipped, node_id=node.id, node_type=node.type)
    if builder.state.status is RunStatus.RUNNING and all(
        builder.state.node(n.id).status in TERMINAL_NODE_STATUSES for n in definition.nodes
    ):
        builder.emit(RunCompleted)


def template_context(state: RunState) -> dict[str, JsonValue]:
    """What templates see: ``trigger`` (its payload and kind), ``workflow``, ``vars``, ``nodes.<id>.output``."""
    trigger = state.trigger
    return {
        "trigger": {"kind": trigger.kind, **trigger.data} if trigger else {},
        "workflow": {"id": str(state.workflow_id), "version": state.workflow_version},
        "vars": {},
        "nodes": {
            node_id: {"output": node.output}
            for node_id, node in state.nodes.items()
            if node.status is NodeStatus.SUCCEEDED
        },
    }


def _edge_state(state: RunState, edge: Edge) -> str:
    source = state.node(edge.source)
    if source.status is NodeStatus.SUCCEEDED:
        if source.taken_handles is None:
            return "dead" if edge.source_handle == ERROR_HANDLE else "taken"
        return "taken" if edge.source_handle in source.taken_handles else "dead"
    if source.status is NodeStatus.SKIPPED:
        return "dead"
    return "open"


def _start(builder: _Builder, node: Node) -> None:
    topic = RUNNER_TOPICS.get(node.type)
    if topic is None:
        builder.emit(NodeSucceeded, node_id=node.id, node_type=node.type, attempt=1, output={}, duration_ms=0.0)
        return
    attempt = builder.state.node(node.id).attempt + 1
    config = node.data.model_dump(mode="json", exclude={"name"})
    try:
        rendered = render_value(config, template_context(builder.state), now=builder.now, new_id=builder.new_id)
    except TemplateError as error:
        failure = NodeError(type="template", message=str(error), retryable=False)
        builder.emit(NodeFailed, node_id=node.id, node_type=node.type, attempt=attempt, error=failure, duration_ms=0.0)
        builder.emit(RunFailed, reason=f"node {node.id!r} failed: {failure.message}", failed_node_id=node.id)
        return
    if not isinstance(rendered, dict):
        raise TypeError("a rendered node config is an object")
    builder.emit(NodeScheduled, node_id=node.id, node_type=node.type, attempt=attempt, input=rendered)
    state = builder.state
    if state.workflow_id is None:
        raise ValueError("a node is started only in a started run")
    builder.command(
        Outgoing(
            topic=topic,
            key=str(state.run_id),
            message=ExecuteNode(
                message_id=builder.new_id(),
                tenant_id=state.tenant_id,
                occurred_at=builder.now,
                correlation_id=state.run_id,
                causation_id=builder.message.message_id,
                run_id=state.run_id,
                workflow_id=state.workflow_id,
                node_id=node.id,
                node_type=node.type,
                attempt=attempt,
                input=rendered,
                timeout_seconds=float(getattr(node.data, "timeout_seconds", 30)),
            ),
        )
    )
