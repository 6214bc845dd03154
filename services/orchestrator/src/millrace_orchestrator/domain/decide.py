"""Decisions: what happens to a run when a message arrives. Pure: the clock and ids come in."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pydantic import JsonValue

from millrace_common.conditions import Condition, ConditionError, evaluate, parse_condition
from millrace_common.messages.node_commands import ExecuteNode, NodeError, NodeFailedResult, NodeSucceededResult
from millrace_common.messages.run_commands import CancelRun, FireTimer, RetryRun, StartRun
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
    TimerPurpose,
    TimerScheduled,
)
from millrace_common.outbox import Outgoing
from millrace_common.templating import TemplateError, render_value
from millrace_common.workflow import RUNNER_TOPICS, Edge, Node, RetryPolicy

from millrace_orchestrator.domain.state import TERMINAL_NODE_STATUSES, NodeStatus, RunState, RunStatus, evolve

Message = StartRun | CancelRun | RetryRun | FireTimer | NodeSucceededResult | NodeFailedResult
ERROR_HANDLE = "error"
# Runners enforce a node's timeout themselves; the orchestrator's own timer is the backstop for a
# runner that died mid-node, so it waits a little longer.
NODE_TIMEOUT_GRACE = timedelta(seconds=15)
_POLICY_FIELDS = frozenset({"name", "retry", "timeout_seconds", "on_error", "fallback_output"})


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
        self.message = message
        self.now = now
        self.new_id = new_id

    def emit(self, event_type: type[RunEvent], **fields: object) -> None:
        event = event_type(
            message_id=self.new_id(),
            tenant_id=self.state.tenant_id or self.message.tenant_id,
            occurred_at=self.now,
            correlation_id=self.state.run_id,
            causation_id=self.message.message_id,
            run_id=self.state.run_id,
            seq=self.state.last_seq + 1,
            **fields,
        )
        self.events.append(event)
        self.state = evolve(self.state, event)

    def timer(self, purpose: TimerPurpose, fire_at: datetime, node_id: str | None = None, attempt: int | None = None) -> None:
        self.emit(TimerScheduled, timer_id=self.new_id(), fire_at=fire_at, purpose=purpose, node_id=node_id, attempt=attempt)

    def decision(self) -> Decision:
        return Decision(tuple(self.events), tuple(self.commands), self.state)


def decide(state: RunState, message: Message, *, now: datetime, new_id: Callable[[], UUID]) -> Decision:
    """Events and commands that follow from ``message``; a message that changes nothing yields none."""
    builder = _Builder(state, message, now, new_id)
    match message:
        case StartRun():
            if state.status is not RunStatus.NEW:
                return Decision()
            _start_run(builder, message)
        case CancelRun():
            if state.status is not RunStatus.RUNNING:
                return Decision()
            builder.emit(RunCancelled, reason=message.reason, requested_by=message.requested_by)
        case RetryRun():
            failed = tuple(n.id for n in state.definition.nodes if state.node(n.id).status is NodeStatus.FAILED)
            if state.status is not RunStatus.FAILED or not failed:
                return Decision()
            builder.emit(RunRetried, node_ids=failed, requested_by=message.requested_by)
        case FireTimer():
            if message.timer_id not in state.timers:
                return Decision()
            _fire(builder, state.timers[message.timer_id])
        case NodeSucceededResult() if _is_current_attempt(state, message):
            node = state.definition.node(message.node_id)
            _succeed(builder, node, message.attempt, message.output, duration_ms=message.duration_ms)
        case NodeFailedResult() if _is_current_attempt(state, message):
            node = state.definition.node(message.node_id)
            _fail(builder, node, message.attempt, message.error, duration_ms=message.duration_ms)
        case _:
            return Decision()
    _advance(builder)
    return builder.decision()


def _start_run(builder: _Builder, message: StartRun) -> None:
    builder.emit(
        RunStarted, workflow_id=message.workflow_id, workflow_version=message.workflow_version, trigger=message.trigger
    )
    settings = builder.state.definition.settings
    builder.timer("run_timeout", builder.now + timedelta(minutes=settings.timeout_minutes))
    trigger = builder.state.definition.trigger
    output = {"kind": message.trigger.kind, "data": message.trigger.data}
    _succeed(builder, trigger, 1, output)


def _fire(builder: _Builder, timer: TimerScheduled) -> None:
    builder.emit(TimerFired, timer_id=timer.timer_id)
    if builder.state.status is not RunStatus.RUNNING:
        return
    if timer.purpose == "run_timeout":
        minutes = builder.state.definition.settings.timeout_minutes
        builder.emit(RunTimedOut, reason=f"the run exceeded its timeout of {minutes} minute(s)")
        return
    if timer.node_id is None or timer.attempt is None:
        return
    node = builder.state.definition.node(timer.node_id)
    current = builder.state.node(node.id)
    if current.attempt != timer.attempt:
        return
    if timer.purpose == "retry" and current.status is NodeStatus.RETRYING:
        _dispatch(builder, node, timer.attempt + 1)
    elif timer.purpose == "delay" and current.status is NodeStatus.SCHEDULED:
        _succeed(builder, node, timer.attempt, {"waited_until": timer.fire_at.isoformat()})
    elif timer.purpose == "node_timeout" and current.status is NodeStatus.SCHEDULED:
        error = NodeError(type="timeout", message=f"no result within {node.data.timeout_seconds:g} s", retryable=True)
        _fail(builder, node, timer.attempt, error)


def _is_current_attempt(state: RunState, message: NodeSucceededResult | NodeFailedResult) -> bool:
    if state.status is not RunStatus.RUNNING or message.node_id not in {n.id for n in state.definition.nodes}:
        return False
    node = state.node(message.node_id)
    return node.status is NodeStatus.SCHEDULED and node.attempt == message.attempt


def _succeed(
    builder: _Builder,
    node: Node,
    attempt: int,
    output: dict[str, JsonValue],
    *,
    handles: tuple[str, ...] | None = None,
    duration_ms: float = 0.0,
) -> None:
    builder.emit(
        NodeSucceeded,
        node_id=node.id,
        node_type=node.type,
        attempt=attempt,
        output=output,
        duration_ms=duration_ms,
        taken_handles=handles,
    )


def _fail(builder: _Builder, node: Node, attempt: int, error: NodeError, *, duration_ms: float = 0.0) -> None:
    """A failed attempt: retried by policy, else handled by the node's on-error mode."""
    policy = retry_policy(builder.state, node)
    if error.retryable and attempt < policy.max_attempts and _retries(policy, error.type):
        retry_at = builder.now + backoff(policy, attempt, builder.new_id())
        builder.emit(
            NodeRetryScheduled, node_id=node.id, node_type=node.type, attempt=attempt, error=error, retry_at=retry_at
        )
        builder.timer("retry", retry_at, node.id, attempt)
        return
    if node.data.on_error == "fallback" and node.data.fallback_output is not None:
        _succeed(builder, node, attempt, node.data.fallback_output, duration_ms=duration_ms)
        return
    builder.emit(
        NodeFailed, node_id=node.id, node_type=node.type, attempt=attempt, error=error, duration_ms=duration_ms
    )
    if node.data.on_error != "error_edge":
        builder.emit(RunFailed, reason=f"node {node.id!r} failed: {error.message}", failed_node_id=node.id)


def retry_policy(state: RunState, node: Node) -> RetryPolicy:
    """The node's own policy when it sets one, else the workflow's ``retry_count`` with default back-off."""
    return node.data.retry or RetryPolicy(max_attempts=state.definition.settings.retry_count + 1)


def _retries(policy: RetryPolicy, error_type: str) -> bool:
    return "*" in policy.retry_on or error_type in policy.retry_on


def backoff(policy: RetryPolicy, attempt: int, entropy: UUID) -> timedelta:
    """Exponential back-off with ±20 % jitter (drawn from ``entropy`` so decisions stay pure)."""
    base = min(policy.max_backoff_seconds, policy.backoff_seconds * policy.backoff_multiplier ** (attempt - 1))
    jitter = 0.8 + (entropy.int % 10_000) / 10_000 * 0.4
    return timedelta(seconds=base * jitter)


def _advance(builder: _Builder) -> None:
    """Start every node whose inputs are all settled, skip the ones no live edge reaches, and
    finish the run when nothing is left to do (dead-path elimination: joins never hang)."""
    definition = builder.state.definition
    progressed = True
    while progressed and builder.state.status is RunStatus.RUNNING:
        progressed = False
        for node in definition.nodes:
            if builder.state.status is not RunStatus.RUNNING:
                return
            if node.parent_id is not None or builder.state.node(node.id).status is not NodeStatus.PENDING:
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
        builder.state.node(n.id).status in TERMINAL_NODE_STATUSES for n in definition.nodes if n.parent_id is None
    ):
        builder.emit(RunCompleted)


def _edge_state(state: RunState, edge: Edge) -> str:
    source = state.node(edge.source)
    if source.status is NodeStatus.SUCCEEDED:
        if source.taken_handles is None:
            return "dead" if edge.source_handle == ERROR_HANDLE else "taken"
        return "taken" if edge.source_handle in source.taken_handles else "dead"
    if source.status is NodeStatus.FAILED:
        return "taken" if edge.source_handle == ERROR_HANDLE else "dead"
    if source.status is NodeStatus.SKIPPED:
        return "dead"
    return "open"


def template_context(state: RunState) -> dict[str, JsonValue]:
    """What templates see: ``trigger`` (its payload and kind), ``workflow``, ``vars``, ``nodes.<id>.output``."""
    trigger = state.trigger
    return {
        "trigger": {"kind": trigger.kind, **trigger.data} if trigger else {},
        "workflow": {"id": str(state.workflow_id), "version": state.workflow_version},
        "vars": dict(state.variables),
        "nodes": {
            node_id: {"output": node.output, "error": node.error.model_dump() if node.error else None}
            for node_id, node in state.nodes.items()
            if node.status in (NodeStatus.SUCCEEDED, NodeStatus.FAILED)
        },
    }


def _render(builder: _Builder, node: Node, value: JsonValue) -> JsonValue:
    return render_value(value, template_context(builder.state), now=builder.now, new_id=builder.new_id)


def _start(builder: _Builder, node: Node) -> None:
    """Evaluate a control node in place, or send a side-effecting node to its runner."""
    attempt = builder.state.node(node.id).attempt + 1
    try:
        match node.type:
            case "end":
                output = node.data.output
                _succeed(builder, node, attempt, _render(builder, node, output) if output else {})
            case "set":
                _succeed(builder, node, attempt, _render(builder, node, dict(node.data.variables)))
            case "condition":
                condition = _rendered_condition(builder, node, node.data.condition)
                result = evaluate(condition, template_context(builder.state), now=builder.now)
                _succeed(builder, node, attempt, {"result": result}, handles=("true",) if result else ("false",))
            case "switch":
                context = template_context(builder.state)
                chosen = next(
                    (
                        case.name
                        for case in node.data.cases
                        if evaluate(_rendered_condition(builder, node, case.condition), context, now=builder.now)
                    ),
                    None,
                )
                handle = f"case:{chosen}" if chosen is not None else "default"
                _succeed(builder, node, attempt, {"case": chosen}, handles=(handle,))
            case "wait_delay":
                _wait(builder, node, attempt)
            case node_type if node_type in RUNNER_TOPICS:
                _dispatch(builder, node, attempt)
            case _:
                error = NodeError(
                    type="unsupported", message=f"node type {node.type!r} does not run on this orchestrator yet", retryable=False
                )
                _fail(builder, node, attempt, error)
    except (ConditionError, TemplateError) as problem:
        _fail(builder, node, attempt, NodeError(type=type(problem).__name__.lower(), message=str(problem), retryable=False))


def _rendered_condition(builder: _Builder, node: Node, condition: Condition) -> Condition:
    """The tree with the templates in its compared values rendered (its field paths are literal)."""
    return parse_condition(_render(builder, node, condition.model_dump(mode="json", by_alias=True)))


def _wait(builder: _Builder, node: Node, attempt: int) -> None:
    if node.data.duration_seconds is not None:
        fire_at = builder.now + timedelta(seconds=node.data.duration_seconds)
    else:
        until = _render(builder, node, node.data.until)
        try:
            fire_at = datetime.fromisoformat(str(until))
        except ValueError as error:
            raise TemplateError(f"'until' rendered to {until!r}, which is not an ISO-8601 time") from error
        fire_at = fire_at if fire_at.tzinfo else fire_at.replace(tzinfo=UTC)
    builder.emit(NodeScheduled, node_id=node.id, node_type=node.type, attempt=attempt, input={"until": fire_at.isoformat()})
    builder.timer("delay", max(fire_at, builder.now), node.id, attempt)


def _dispatch(builder: _Builder, node: Node, attempt: int) -> None:
    config = node.data.model_dump(mode="json", by_alias=True)
    literal = _POLICY_FIELDS | node.data.literal_fields
    try:
        rendered = {k: (v if k in literal else _render(builder, node, v)) for k, v in config.items() if k != "name"}
    except TemplateError as error:
        _fail(builder, node, attempt, NodeError(type="template", message=str(error), retryable=False))
        return
    builder.emit(NodeScheduled, node_id=node.id, node_type=node.type, attempt=attempt, input=rendered)
    state = builder.state
    if state.workflow_id is None:
        raise ValueError("a node is started only in a started run")
    builder.commands.append(
        Outgoing(
            topic=RUNNER_TOPICS[node.type],
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
                timeout_seconds=node.data.timeout_seconds,
            ),
        )
    )
    timeout_at = builder.now + timedelta(seconds=node.data.timeout_seconds) + NODE_TIMEOUT_GRACE
    builder.timer("node_timeout", timeout_at, node.id, attempt)
