"""Decisions: what happens to a run when a message arrives. Pure: the clock and ids come in."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from millrace_common.conditions import Condition, ConditionError, evaluate, parse_condition
from millrace_common.limits import MAX_PAYLOAD_BYTES, too_large
from millrace_common.messages.node_commands import (
    ExecuteNode,
    NodeError,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.messages.run_commands import CancelRun, FireTimer, ResumeRun, RetryRun, StartRun
from millrace_common.messages.run_events import (
    ApprovalDecided,
    ApprovalRequested,
    ForEachItemCompleted,
    ForEachItemScheduled,
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
    RunThrottled,
    RunTimedOut,
    TimerFired,
    TimerPurpose,
    TimerScheduled,
)
from millrace_common.node_errors import RETRY_EVERY_TYPE, NodeErrorType
from millrace_common.outbox import Outgoing
from millrace_common.templating import TemplateError, render_value
from millrace_common.workflow import RUNNER_TOPICS, Edge, Node, RetryPolicy
from pydantic import JsonValue

from millrace_orchestrator.domain.state import (
    TERMINAL_NODE_STATUSES,
    NodeStatus,
    RunState,
    RunStatus,
    evolve,
    instance_key,
    outer_scope,
    split_key,
)

Message = StartRun | CancelRun | RetryRun | FireTimer | ResumeRun | NodeSucceededResult | NodeFailedResult
ERROR_HANDLE = "error"
# Runners enforce a node's timeout themselves; the orchestrator's own timer is the backstop for a
# runner that died mid-node, so it waits a little longer.
_POLICY_FIELDS = frozenset({"name", "retry", "timeout_seconds", "on_error", "fallback_output"})


@dataclass(frozen=True)
class WorkflowLoad:
    """How busy the run's workflow is when a StartRun arrives (read by the shell, judged here)."""

    started_last_hour: int = 0
    running: int = 0

    def after(self, events: Sequence[RunEvent]) -> WorkflowLoad:
        """The load once ``events`` (of one run of the workflow) are in the log: the shell decides a
        batch of messages against one reading of the load, carried forward by this."""
        started, running = self.started_last_hour, self.running
        for event in events:
            started += isinstance(event, RunStarted)
            running += running_change(event)
        return WorkflowLoad(started, running)


def running_change(event: RunEvent) -> int:
    """How ``event`` changes the number of its workflow's running runs."""
    if isinstance(event, (RunStarted, RunRetried)):
        return 1
    if isinstance(event, (RunCompleted, RunFailed, RunCancelled, RunTimedOut)):
        return -1
    return 0


@dataclass(frozen=True)
class WorkflowStarts:
    """A batch's new runs of one workflow: how many started, the most its running runs had grown
    by at any start (the runs the batch ended before it counted off, as ``WorkflowLoad.after``
    counts), and the strictest limits the runs' definitions set. A batch decided on an unknown load
    decides as it would on the true one exactly when ``started + starts <= per_hour`` and
    ``running + peak <= concurrent``."""

    starts: int
    peak: int
    per_hour: int
    concurrent: int | None


def starts_by_workflow(
    events: Sequence[RunEvent], states: Mapping[UUID, RunState]
) -> dict[tuple[str, UUID], WorkflowStarts]:
    """Per (tenant, workflow) that ``events`` (a batch's, in order; ``states`` the runs' states
    after it) start runs of."""
    grown: dict[tuple[str, UUID], int] = {}
    starts: dict[tuple[str, UUID], WorkflowStarts] = {}
    for event in events:
        state = states[event.run_id]
        if state.workflow_id is None:
            continue
        key = (event.tenant_id, state.workflow_id)
        grown[key] = grown.get(key, 0) + running_change(event)
        if isinstance(event, RunStarted):
            settings = state.definition.settings
            seen = starts.get(
                key, WorkflowStarts(0, 0, settings.max_executions_per_hour, settings.max_concurrent_runs)
            )
            limits = [c for c in (seen.concurrent, settings.max_concurrent_runs) if c is not None]
            starts[key] = WorkflowStarts(
                starts=seen.starts + 1,
                peak=max(seen.peak, grown[key]),
                per_hour=min(seen.per_hour, settings.max_executions_per_hour),
                concurrent=min(limits) if limits else None,
            )
    return starts


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
        # for_each item scopes (``[3]``, ``[3][1]``) an event changed since ``_settle`` last looked:
        # a decision ends settled, so only these can move, and the rest are not looked at again.
        self.touched: set[str] = set()

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
        if event_type is RunRetried:
            # A retried run looks at every item again: a run that ended mid-pass left some unseen.
            for loop_key, loop in self.state.loops.items():
                _, loop_scope = split_key(loop_key)
                self.touched.update(f"{loop_scope}[{index}]" for index in loop.running)
        node_ids = fields.get("node_ids") or ()
        node_id = fields.get("node_id")
        for key in (node_id, *node_ids):  # type: ignore[misc]
            if isinstance(key, str):
                _, scope = split_key(key)
                if scope:
                    self.touched.add(scope)
                if event_type is ForEachItemScheduled:
                    self.touched.add(f"{scope}[{fields['index']}]")

    def timer(
        self, purpose: TimerPurpose, fire_at: datetime, node_id: str | None = None, attempt: int | None = None
    ) -> None:
        self.emit(
            TimerScheduled,
            timer_id=self.new_id(),
            fire_at=fire_at,
            purpose=purpose,
            node_id=node_id,
            attempt=attempt,
        )

    def decision(self) -> Decision:
        return Decision(tuple(self.events), tuple(self.commands), self.state)


def decide(
    state: RunState,
    message: Message,
    *,
    now: datetime,
    new_id: Callable[[], UUID],
    load: WorkflowLoad | None = None,
) -> Decision:
    """Events and commands that follow from ``message``; a message that changes nothing yields none."""
    builder = _Builder(state, message, now, new_id)
    match message:
        case StartRun():
            if state.status is not RunStatus.NEW:
                return Decision()
            reason = throttle_reason(state, load or WorkflowLoad())
            if reason is not None:
                builder.emit(
                    RunThrottled,
                    workflow_id=message.workflow_id,
                    workflow_version=message.workflow_version,
                    trigger=message.trigger,
                    reason=reason,
                )
                return builder.decision()
            _start_run(builder, message)
        case CancelRun():
            if state.status is not RunStatus.RUNNING:
                return Decision()
            builder.emit(RunCancelled, reason=message.reason, requested_by=message.requested_by)
        case RetryRun():
            failed = tuple(
                n.id for n in state.definition.nodes if state.node(n.id).status is NodeStatus.FAILED
            )
            if state.status is not RunStatus.FAILED or not failed:
                return Decision()
            builder.emit(RunRetried, node_ids=failed, requested_by=message.requested_by)
            # The failure removed the run's timers; the retried run gets a whole timeout again.
            minutes = state.definition.settings.timeout_minutes
            builder.timer("run_timeout", builder.now + timedelta(minutes=minutes))
        case FireTimer():
            if message.timer_id not in state.timers:
                return Decision()
            _fire(builder, state.timers[message.timer_id])
        case ResumeRun() if _awaits_decision(state, message.node_id):
            node, scope = _instance(state, message.node_id)
            _decided(builder, node, scope, message.decision, message.decided_by, message.note)
        case NodeSucceededResult() if _is_current_attempt(state, message):
            node, scope = _instance(state, message.node_id)
            _succeed(builder, node, scope, message.attempt, message.output, duration_ms=message.duration_ms)
        case NodeFailedResult() if _is_current_attempt(state, message):
            node, scope = _instance(state, message.node_id)
            _fail(builder, node, scope, message.attempt, message.error, duration_ms=message.duration_ms)
        case _:
            return Decision()
    _settle(builder)
    return builder.decision()


def _instance(state: RunState, key: str) -> tuple[Node, str]:
    node_id, scope = split_key(key)
    return state.definition.node(node_id), scope


def throttle_reason(state: RunState, load: WorkflowLoad) -> str | None:
    """Why a new run of this workflow may not start now, if it may not."""
    settings = state.definition.settings
    if load.started_last_hour >= settings.max_executions_per_hour:
        return f"max_executions_per_hour reached: {load.started_last_hour} runs started in the last hour"
    if settings.max_concurrent_runs is not None and load.running >= settings.max_concurrent_runs:
        return f"max_concurrent_runs reached: {load.running} runs are running"
    return None


def _start_run(builder: _Builder, message: StartRun) -> None:
    builder.emit(
        RunStarted,
        workflow_id=message.workflow_id,
        workflow_version=message.workflow_version,
        trigger=message.trigger,
    )
    settings = builder.state.definition.settings
    builder.timer("run_timeout", builder.now + timedelta(minutes=settings.timeout_minutes))
    trigger = builder.state.definition.trigger
    output = {"kind": message.trigger.kind, "data": message.trigger.data}
    _succeed(builder, trigger, "", 1, output)


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
    node, scope = _instance(builder.state, timer.node_id)
    current = builder.state.node(timer.node_id)
    if current.attempt != timer.attempt:
        return
    if timer.purpose == "retry" and current.status is NodeStatus.RETRYING:
        _dispatch(builder, node, scope, timer.attempt + 1)
    elif timer.purpose == "delay" and current.status is NodeStatus.SCHEDULED:
        _succeed(builder, node, scope, timer.attempt, {"waited_until": timer.fire_at.isoformat()})
    elif timer.purpose == "approval_deadline" and current.status is NodeStatus.SCHEDULED:
        _decided(builder, node, scope, "timeout", None, "the deadline passed")
    # A "node_timeout" timer (scheduled by older versions as a backstop) does nothing: the runner
    # ends an overrunning node with a `timeout` result itself, and a runner that dies mid-command
    # leaves the command's offset uncommitted, so the next runner receives it again, as the same
    # attempt under the same idempotency key. While a result may still come, the node waits.


def _awaits_decision(state: RunState, key: str) -> bool:
    node_id, _ = split_key(key)
    known = {n.id: n.type for n in state.definition.nodes}
    return (
        state.status is RunStatus.RUNNING
        and known.get(node_id) == "approval"
        and state.node(key).status is NodeStatus.SCHEDULED
    )


def _decided(
    builder: _Builder, node: Node, scope: str, decision: str, decided_by: str | None, note: str
) -> None:
    key = instance_key(node.id, scope)
    builder.emit(ApprovalDecided, node_id=key, decision=decision, decided_by=decided_by, note=note)
    output = {"decision": decision, "decided_by": decided_by, "note": note}
    _succeed(builder, node, scope, builder.state.node(key).attempt, output, handles=(decision,))


def _request_approval(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    key = instance_key(node.id, scope)
    config = node.data
    title = _render(builder, node, scope, config.title)
    description = _render(builder, node, scope, config.description)
    context = template_context(builder.state, node.parent_id, scope)
    snapshot = {"trigger": context["trigger"], "nodes": context["nodes"], "vars": context["vars"]}
    if "item" in context:
        snapshot["item"] = context["item"]
    deadline_at = (
        builder.now + timedelta(seconds=config.deadline_seconds) if config.deadline_seconds else None
    )
    builder.emit(NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input={"title": title})
    state = builder.state
    builder.emit(
        ApprovalRequested,
        node_id=key,
        workflow_id=state.workflow_id,
        assignee=config.assignee.model_dump(mode="json", exclude_none=True),
        title=str(title),
        description=str(description),
        data=snapshot,
        deadline_at=deadline_at,
        on_deadline=config.on_deadline,
        escalate_to=config.escalate_to.model_dump(mode="json", exclude_none=True)
        if config.escalate_to
        else None,
        quorum=config.quorum,
        allow_self_approval=config.allow_self_approval,
        requested_by=state.trigger.started_by if state.trigger else None,
    )
    if deadline_at is not None and config.on_deadline == "timeout":
        builder.timer("approval_deadline", deadline_at, key, attempt)


def _is_current_attempt(state: RunState, message: NodeSucceededResult | NodeFailedResult) -> bool:
    node_id, _ = split_key(message.node_id)
    if state.status is not RunStatus.RUNNING or node_id not in {n.id for n in state.definition.nodes}:
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
    if node.data.on_error != "error_edge" and not scope:
        builder.emit(RunFailed, reason=f"node {key!r} failed: {error.message}", failed_node_id=key)


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


def _settle(builder: _Builder) -> None:
    """Make every possible step: start what is ready in each scope, finish for_each items and
    loops, and finish the run when nothing is left (dead-path elimination: joins never hang)."""
    progressed = True
    while progressed and builder.state.status is RunStatus.RUNNING:
        touched, builder.touched = builder.touched, set()
        items_touched: dict[str, set[int]] = {}
        for item_scope in touched:
            outer, index = outer_scope(item_scope)
            items_touched.setdefault(outer, set()).add(index)
        progressed = _advance_scope(builder, None, "")
        # Sorted: a map's order follows the process's string hashing, and decisions must not.
        for loop_key in sorted(builder.state.loops.keys()):
            if builder.state.status is not RunStatus.RUNNING:
                return
            if builder.state.node(loop_key).status is not NodeStatus.SCHEDULED:
                continue
            node, scope = _instance(builder.state, loop_key)
            # Only the items an event touched can move: looking at every running item made a
            # message cost O(max_concurrency) in a loop with many items in flight.
            running = builder.state.loops[loop_key].running
            for index in sorted(i for i in items_touched.get(scope, ()) if i in running):
                progressed |= _advance_scope(builder, node.id, f"{scope}[{index}]")
            progressed |= _fill_loop(builder, node, scope)
    definition = builder.state.definition
    if builder.state.status is RunStatus.RUNNING and all(
        builder.state.node(n.id).status in TERMINAL_NODE_STATUSES for n in definition.top_level
    ):
        builder.emit(RunCompleted)


def _advance_scope(builder: _Builder, parent_id: str | None, scope: str) -> bool:
    """One pass over a scope (the top level, or one item of a for_each); True if anything moved."""
    definition = builder.state.definition
    members = definition.body(parent_id) if parent_id else definition.top_level
    progressed = False
    for node in members:
        if builder.state.status is not RunStatus.RUNNING:
            return progressed
        key = instance_key(node.id, scope)
        if builder.state.node(key).status is not NodeStatus.PENDING:
            continue
        incoming = definition.incoming(node.id)
        if not incoming and parent_id is None:
            continue
        edges = [_edge_state(builder.state, edge, scope) for edge in incoming]
        if "open" in edges:
            continue
        progressed = True
        if not edges or "taken" in edges:
            _start(builder, node, scope)
        else:
            builder.emit(NodeSkipped, node_id=key, node_type=node.type)
    if parent_id is not None and all(
        builder.state.node(instance_key(n.id, scope)).status in TERMINAL_NODE_STATUSES for n in members
    ):
        _complete_item(builder, parent_id, scope, members)
        progressed = True
    return progressed


def _complete_item(builder: _Builder, loop_id: str, scope: str, members: tuple[Node, ...]) -> None:
    loop_scope, index = outer_scope(scope)
    loop_key = instance_key(loop_id, loop_scope)
    if index not in builder.state.loops[loop_key].running:
        return
    definition = builder.state.definition
    failed = [
        builder.state.node(instance_key(n.id, scope))
        for n in members
        if builder.state.node(instance_key(n.id, scope)).status is NodeStatus.FAILED
        and n.data.on_error != "error_edge"
    ]
    if failed:
        error = failed[0].error
        builder.emit(ForEachItemCompleted, node_id=loop_key, index=index, outcome="failed", error=error)
        return
    sinks = [n for n in members if not definition.outgoing(n.id)]
    outputs = {n.id: builder.state.node(instance_key(n.id, scope)).output for n in sinks}
    result = next(iter(outputs.values())) if len(outputs) == 1 else outputs
    builder.emit(ForEachItemCompleted, node_id=loop_key, index=index, outcome="succeeded", result=result)


def _fill_loop(builder: _Builder, node: Node, scope: str) -> bool:
    """Start items up to the loop's concurrency; finish the loop when every item is done."""
    key = instance_key(node.id, scope)
    loop = builder.state.loops[key]
    attempt = builder.state.node(key).attempt
    if node.data.failure_policy == "fail" and loop.failures:
        index, error = min(loop.failures.items())
        failure = NodeError(
            type=NodeErrorType.ITEM_FAILED, message=f"item {index} failed: {error.message}", retryable=False
        )
        _fail(builder, node, scope, attempt, failure)
        return True
    progressed = False
    while len(builder.state.loops[key].running) < node.data.max_concurrency and builder.state.loops[
        key
    ].next_index < len(loop.items):
        builder.emit(ForEachItemScheduled, node_id=key, index=builder.state.loops[key].next_index)
        progressed = True
    loop = builder.state.loops[key]
    if loop.done:
        results: list[JsonValue] = []
        for index in range(len(loop.items)):
            if index in loop.results:
                results.append(loop.results[index])
            elif node.data.failure_policy == "collect":
                results.append({"error": loop.failures[index].model_dump(mode="json")})
        output = {"results": results, "failed": len(loop.failures), "count": len(loop.items)}
        _succeed(builder, node, scope, attempt, output)
        progressed = True
    return progressed


def _edge_state(state: RunState, edge: Edge, scope: str) -> str:
    source = state.node(instance_key(edge.source, scope))
    if source.status is NodeStatus.SUCCEEDED:
        if source.taken_handles is None:
            return "dead" if edge.source_handle == ERROR_HANDLE else "taken"
        return "taken" if edge.source_handle in source.taken_handles else "dead"
    if source.status is NodeStatus.FAILED:
        return "taken" if edge.source_handle == ERROR_HANDLE else "dead"
    if source.status is NodeStatus.SKIPPED:
        return "dead"
    return "open"


def template_context(state: RunState, parent_id: str | None = None, scope: str = "") -> dict[str, JsonValue]:
    """What templates see: ``trigger`` (its payload and kind), ``workflow``, ``vars``,
    ``nodes.<id>.output`` (and ``.error``); inside a for_each body also ``item`` and ``index``, and
    ``nodes`` then includes the body's nodes of the same item. Built from the definition, so its
    cost does not grow with the number of items a loop has run."""
    trigger = state.trigger
    visible = [(n.id, n.id) for n in state.definition.top_level]
    if parent_id is not None:
        visible += [(n.id, instance_key(n.id, scope)) for n in state.definition.body(parent_id)]
    nodes: dict[str, JsonValue] = {}
    for node_id, key in visible:
        node = state.nodes.get(key)
        if node is not None and node.status in (NodeStatus.SUCCEEDED, NodeStatus.FAILED):
            nodes[node_id] = {
                "output": node.output,
                "error": node.error.model_dump(mode="json") if node.error else None,
            }
    context: dict[str, JsonValue] = {
        "trigger": {"kind": trigger.kind, **trigger.data} if trigger else {},
        "workflow": {"id": str(state.workflow_id), "version": state.workflow_version},
        "vars": dict(state.variables),
        "nodes": nodes,
    }
    if parent_id is not None:
        loop_scope, index = outer_scope(scope)
        context["item"] = state.loops[instance_key(parent_id, loop_scope)].items[index]
        context["index"] = index
    return context


class PayloadTooLarge(Exception):
    """A node's input or output no message could carry (``millrace_common.limits``)."""


def _bounded(value: JsonValue, what: str) -> JsonValue:
    """``value``, or :class:`PayloadTooLarge` when a message could not carry it."""
    size = too_large(value)
    if size is not None:
        raise PayloadTooLarge(
            f"the node's {what} is {size:,} bytes of JSON; the limit is {MAX_PAYLOAD_BYTES:,}"
        )
    return value


_REFUSALS = (ConditionError, TemplateError, PayloadTooLarge)
"""What the orchestrator finds wrong with a node before it runs: the node fails, not retried."""


def _refuse(builder: _Builder, node: Node, scope: str, attempt: int, problem: Exception) -> None:
    message = str(problem)
    if isinstance(problem, ConditionError):
        error = NodeError(type=NodeErrorType.CONDITION, message=message, retryable=False)
    elif isinstance(problem, PayloadTooLarge):
        error = NodeError(type=NodeErrorType.TOO_LARGE, message=message, retryable=False)
    else:
        error = NodeError(type=NodeErrorType.TEMPLATE, message=message, retryable=False)
    _fail(builder, node, scope, attempt, error)


def _render(builder: _Builder, node: Node, scope: str, value: JsonValue) -> JsonValue:
    context = template_context(builder.state, node.parent_id, scope)
    return render_value(value, context, now=builder.now, new_id=builder.new_id)


def _start(builder: _Builder, node: Node, scope: str) -> None:
    """Evaluate a control node in place, or send a side-effecting node to its runner."""
    key = instance_key(node.id, scope)
    attempt = builder.state.node(key).attempt + 1
    try:
        match node.type:
            case "end":
                output = node.data.output
                rendered = _render(builder, node, scope, output) if output else {}
                _succeed(builder, node, scope, attempt, _bounded(rendered, "output"))
            case "set":
                rendered = _render(builder, node, scope, dict(node.data.variables))
                _succeed(builder, node, scope, attempt, _bounded(rendered, "output"))
            case "condition":
                result = _holds(builder, node, scope, node.data.condition)
                _succeed(
                    builder,
                    node,
                    scope,
                    attempt,
                    {"result": result},
                    handles=("true",) if result else ("false",),
                )
            case "switch":
                chosen = next(
                    (c.name for c in node.data.cases if _holds(builder, node, scope, c.condition)), None
                )
                handle = f"case:{chosen}" if chosen is not None else "default"
                _succeed(builder, node, scope, attempt, {"case": chosen}, handles=(handle,))
            case "wait_delay":
                _wait(builder, node, scope, attempt)
            case "approval":
                _request_approval(builder, node, scope, attempt)
            case "for_each":
                items = _render(builder, node, scope, node.data.items)
                if not isinstance(items, list):
                    raise TemplateError(f"'items' rendered to {type(items).__name__}, not a list")
                _bounded(items, "items")
                builder.emit(
                    NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input={"items": items}
                )
            case node_type if node_type in RUNNER_TOPICS:
                _dispatch(builder, node, scope, attempt)
            case _:
                error = NodeError(
                    type=NodeErrorType.UNSUPPORTED_NODE,
                    message=f"node type {node.type!r} does not run on this orchestrator yet",
                    retryable=False,
                )
                _fail(builder, node, scope, attempt, error)
    except _REFUSALS as problem:
        _refuse(builder, node, scope, attempt, problem)


def _holds(builder: _Builder, node: Node, scope: str, condition: Condition) -> bool:
    context = template_context(builder.state, node.parent_id, scope)
    return evaluate(_rendered_condition(builder, context, condition), context, now=builder.now)


def _rendered_condition(builder: _Builder, context: dict[str, JsonValue], condition: Condition) -> Condition:
    """The tree with the templates in its compared values rendered (its field paths are literal)."""
    dumped = _templated_condition(condition)
    if dumped is None:
        return condition
    return parse_condition(render_value(dumped, context, now=builder.now, new_id=builder.new_id))


_TEMPLATED: dict[int, tuple[Condition, JsonValue | None]] = {}


def _templated_condition(condition: Condition) -> JsonValue | None:
    """The condition as JSON when any of its values is a template, else None (it is used as it is).
    Remembered per condition object (a definition's conditions live as long as the definition)."""
    known = _TEMPLATED.get(id(condition))
    if known is not None and known[0] is condition:
        return known[1]
    dumped = condition.model_dump(mode="json", by_alias=True)
    text = json.dumps(dumped)
    templated = dumped if ("{{" in text or "{%" in text or "{#" in text) else None
    if len(_TEMPLATED) >= 4096:
        _TEMPLATED.clear()
    _TEMPLATED[id(condition)] = (condition, templated)
    return templated


def _wait(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    key = instance_key(node.id, scope)
    if node.data.duration_seconds is not None:
        fire_at = builder.now + timedelta(seconds=node.data.duration_seconds)
    else:
        until = _render(builder, node, scope, node.data.until)
        try:
            fire_at = datetime.fromisoformat(str(until))
        except ValueError as error:
            raise TemplateError(f"'until' rendered to {until!r}, which is not an ISO-8601 time") from error
        fire_at = fire_at if fire_at.tzinfo else fire_at.replace(tzinfo=UTC)
    builder.emit(
        NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input={"until": fire_at.isoformat()}
    )
    builder.timer("delay", max(fire_at, builder.now), key, attempt)


def _dispatch(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    """Send the node's command to its runner."""
    key = instance_key(node.id, scope)
    config = node.data.model_dump(mode="json", by_alias=True)
    literal = _POLICY_FIELDS | node.data.literal_fields
    try:
        rendered = {
            k: (v if k in literal else _render(builder, node, scope, v))
            for k, v in config.items()
            if k != "name"
        }
        _bounded(rendered, "input")
    except _REFUSALS as problem:  # also when a retry or a redelivery sends it (outside _start)
        _refuse(builder, node, scope, attempt, problem)
        return
    builder.emit(NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input=rendered)
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
                node_id=key,
                node_type=node.type,
                attempt=attempt,
                input=rendered,
                timeout_seconds=node.data.timeout_seconds,
                causation_depth=state.trigger.causation_depth if state.trigger else 0,
            ),
        )
    )
