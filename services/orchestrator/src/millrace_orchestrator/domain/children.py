"""Runs that start runs: a ``sub_workflow`` node starts a child run (and waits for its end, or not),
a child reports its end to its parent through ``runs.commands``, a parent that ends cancels the
children it still waits for, and a run that fails or times out starts its workflow's error workflow.

Everything here is decided, never done: a child is asked for with a ``StartRun`` command written in
the same transaction as the parent's ``ChildRunRequested`` event, and its end reaches the parent as a
``ReportChildRun`` command written with the child's last event, so a parent that waits survives any
restart of any service: its state is its log, and the report is in the outbox or on Kafka."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_commands import (
    ACTIVE_VERSION,
    CancelRun,
    ChildRunStatus,
    ParentRun,
    ReportChildRun,
    StartRun,
    TriggerData,
)
from millrace_common.contracts.messages.run_events import (
    ChildRunFinished,
    ChildRunRequested,
    ErrorWorkflowRequested,
    NodeScheduled,
    RunCancelled,
    RunFailed,
    RunStarted,
    RunTimedOut,
)
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS
from millrace_common.language.input_schema import input_problems
from millrace_common.language.workflow import Node
from pydantic import JsonValue

from millrace_orchestrator.domain.building import _Builder, _instance
from millrace_orchestrator.domain.outcomes import _fail, _refuse, _succeed
from millrace_orchestrator.domain.rendering import _REFUSALS, _bounded, _render
from millrace_orchestrator.domain.state import (
    FINISHED_RUN_STATUSES,
    NodeStatus,
    RunState,
    RunStatus,
    instance_key,
)

SUB_WORKFLOW = "sub_workflow"
SUB_WORKFLOW_TRIGGER = "sub_workflow"
"""The trigger kind of a run a sub_workflow node started (its data: the node's rendered input)."""
ERROR_WORKFLOW_TRIGGER = "error_workflow"
"""The trigger kind of a run started as an error workflow; such a run never starts one itself."""
RETRIED_CHILD_STATUSES = frozenset({"failed", "timed_out", "throttled"})


def _start_child(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    """Ask for a run of the node's workflow; with ``fire_and_forget`` the node succeeds at once."""
    key = instance_key(node.id, scope)
    config = node.data
    state = builder.state
    try:
        rendered = _render(builder, node, scope, dict(config.input))
        _bounded(rendered, "input")
    except _REFUSALS as problem:
        _refuse(builder, node, scope, attempt, problem)
        return
    if not isinstance(rendered, dict):
        raise TypeError("a rendered object is an object")
    parent_depth = state.parent.depth if state.parent else 0
    chain = (*(state.parent.workflow_ids if state.parent else ()), state.workflow_id)
    if parent_depth + 1 > builder.max_depth:
        _fail(builder, node, scope, attempt, _too_deep(config.workflow_id, chain, builder.max_depth))
        return
    child_id = builder.new_id()
    builder.emit(
        NodeScheduled,
        node_id=key,
        node_type=node.type,
        attempt=attempt,
        input={
            "workflow_id": str(config.workflow_id),
            "version": config.version,
            "mode": config.mode,
            "input": rendered,
            "run_id": str(child_id),
        },
    )
    wait = config.mode == "wait"
    request_child_run(builder, key, attempt, config.workflow_id, config.version, rendered, wait, child_id)
    if not wait:
        _succeed(builder, node, scope, attempt, {"run_id": str(child_id)})


def request_child_run(
    builder: _Builder,
    key: str,
    attempt: int,
    workflow_id: UUID,
    version: int | None,
    data: dict[str, JsonValue],
    wait: bool = True,
    child_id: UUID | None = None,
) -> UUID:
    """Ask for a run of ``workflow_id`` (the pinned ``version``, or the active one) with ``data`` as its
    trigger data, on behalf of ``key``: a sub_workflow node instance, or an agent's workflow tool call.
    The ``ChildRunRequested`` event and the ``StartRun`` are written together; a child that ends
    reports to ``key`` when ``wait``."""
    state = builder.state
    child_id = child_id or builder.new_id()
    pinned = version or ACTIVE_VERSION
    builder.emit(
        ChildRunRequested,
        node_id=key,
        attempt=attempt,
        child_run_id=child_id,
        workflow_id=workflow_id,
        workflow_version=pinned,
        mode="wait" if wait else "fire_and_forget",
    )
    parent_depth = state.parent.depth if state.parent else 0
    chain = (*(state.parent.workflow_ids if state.parent else ()), state.workflow_id)
    trigger = state.trigger
    parent = ParentRun(
        run_id=state.run_id,
        node_id=key,
        attempt=attempt,
        wait=wait,
        depth=parent_depth + 1,
        workflow_ids=tuple(w for w in chain if w is not None),
    )
    start = StartRun(
        message_id=builder.new_id(),
        tenant_id=state.tenant_id,
        occurred_at=builder.now,
        correlation_id=child_id,
        causation_id=builder.message.message_id,
        run_id=child_id,
        workflow_id=workflow_id,
        workflow_version=pinned,
        trigger=TriggerData(
            kind=SUB_WORKFLOW_TRIGGER,
            data=data,
            started_by=trigger.started_by if trigger else None,
            causation_depth=trigger.causation_depth if trigger else 0,
        ),
        idempotency_key=f"sub_workflow:{state.run_id}:{key}:{attempt}",
        parent=parent,
    )
    builder.commands.append(Outgoing(topic=RUNS_COMMANDS, key=str(child_id), message=start))
    return child_id


def _too_deep(workflow_id: UUID, chain: tuple[UUID | None, ...], limit: int) -> NodeError:
    if workflow_id in chain:
        return NodeError(
            type=NodeErrorType.SUB_WORKFLOW_CYCLE,
            message=f"workflow {workflow_id} calls itself through {len(chain)} runs, past the limit of "
            f"{limit} nested sub-workflows (MILLRACE_SUB_WORKFLOW_MAX_DEPTH)",
            retryable=False,
        )
    return NodeError(
        type=NodeErrorType.SUB_WORKFLOW_DEPTH,
        message=f"starting workflow {workflow_id} would nest {len(chain) + 1} runs, past the limit of "
        f"{limit} nested sub-workflows (MILLRACE_SUB_WORKFLOW_MAX_DEPTH)",
        retryable=False,
    )


def _awaits_child(state: RunState, message: ReportChildRun) -> bool:
    child = state.children.get(message.node_id)
    node = state.node(message.node_id)
    return (
        state.status in (RunStatus.RUNNING, RunStatus.PAUSED)
        and child is not None
        and child.run_id == message.child_run_id
        and child.wait
        and not child.finished
        and node.status is NodeStatus.SCHEDULED
        and node.attempt == message.attempt
    )


def _child_finished(builder: _Builder, message: ReportChildRun) -> None:
    """The waited-for child ended: its final output is the node's, or its failure the node's error."""
    node, scope = _instance(builder.state, message.node_id)
    builder.emit(
        ChildRunFinished,
        node_id=message.node_id,
        attempt=message.attempt,
        child_run_id=message.child_run_id,
        status=message.status,
    )
    if message.status != "completed":
        error = message.error or _child_error(message.child_run_id, message.status, "")
        _fail(builder, node, scope, message.attempt, error)
        return
    try:
        output = _bounded(message.output or {}, "output")
    except _REFUSALS as problem:
        _refuse(builder, node, scope, message.attempt, problem)
        return
    _succeed(builder, node, scope, message.attempt, output)  # type: ignore[arg-type]


def _child_error(child_run_id: UUID, status: str, reason: str) -> NodeError:
    said = f": {reason}" if reason else ""
    return NodeError(
        type=NodeErrorType.SUB_WORKFLOW_FAILED,
        message=f"the sub-workflow run {child_run_id} ended {status}{said}",
        retryable=status in RETRIED_CHILD_STATUSES,
    )


def _after_decision(builder: _Builder, was: RunStatus) -> None:
    """What a run's end sets off: the report to a waiting parent, the cancelling of the children it
    still waits for, its workflow's error workflow."""
    state = builder.state
    if was in FINISHED_RUN_STATUSES or not state.finished:
        return
    reason = _ending_reason(builder)
    parent = state.parent or (builder.message.parent if isinstance(builder.message, StartRun) else None)
    if parent is not None and parent.wait and not builder.reported:
        status: ChildRunStatus = state.status.value  # type: ignore[assignment]
        error = None if status == "completed" else _child_error(state.run_id, status, reason)
        output = state.final_output if status == "completed" else None
        _report(builder, parent, status, output, error)
    if state.status in (RunStatus.CANCELLED, RunStatus.TIMED_OUT):
        for key, child in sorted(state.children.items()):
            if child.wait and not child.finished:
                builder.commands.append(_cancel(builder, child.run_id, key))
    if state.status in (RunStatus.FAILED, RunStatus.TIMED_OUT):
        _start_error_workflow(builder, reason)


def _ending_reason(builder: _Builder) -> str:
    for event in reversed(builder.events):
        if isinstance(event, RunFailed | RunTimedOut | RunCancelled):
            return event.reason
    return ""


def _report(
    builder: _Builder,
    parent: ParentRun,
    status: ChildRunStatus,
    output: dict[str, JsonValue] | None,
    error: NodeError | None,
) -> None:
    builder.reported = True
    state = builder.state
    report = ReportChildRun(
        message_id=builder.new_id(),
        tenant_id=state.tenant_id or builder.message.tenant_id,
        occurred_at=builder.now,
        correlation_id=parent.run_id,
        causation_id=builder.message.message_id,
        run_id=parent.run_id,
        node_id=parent.node_id,
        attempt=parent.attempt,
        child_run_id=state.run_id,
        status=status,
        output=output,
        error=error,
    )
    builder.commands.append(Outgoing(topic=RUNS_COMMANDS, key=str(parent.run_id), message=report))


def _cancel(builder: _Builder, child_run_id: UUID, key: str) -> Outgoing:
    state = builder.state
    cancel = CancelRun(
        message_id=builder.new_id(),
        tenant_id=state.tenant_id,
        occurred_at=builder.now,
        correlation_id=child_run_id,
        causation_id=builder.message.message_id,
        run_id=child_run_id,
        reason=f"its parent run {state.run_id} ended {state.status.value} while node {key!r} waited",
    )
    return Outgoing(topic=RUNS_COMMANDS, key=str(child_run_id), message=cancel)


def _refuse_input(builder: _Builder, message: StartRun) -> bool:
    """A sub-workflow's run whose input does not match its workflow's ``input_schema`` starts and
    fails at once, and its parent's node fails with ``sub_workflow_input`` (True when it did)."""
    schema = builder.state.definition.trigger.data.input_schema
    if schema is None or message.trigger.kind != SUB_WORKFLOW_TRIGGER:
        return False
    problems = input_problems(schema, message.trigger.data)
    if not problems:
        return False
    said = "; ".join(f"{p.pointer or '/'}: {p.message}" for p in problems)
    reason = f"the input does not match the workflow's input_schema: {said}"
    builder.emit(
        RunStarted,
        workflow_id=message.workflow_id,
        workflow_version=message.workflow_version or builder.state.workflow_version,
        trigger=message.trigger,
        parent=message.parent,
    )
    if message.parent is not None and message.parent.wait:
        error = NodeError(type=NodeErrorType.SUB_WORKFLOW_INPUT, message=reason[:2000], retryable=False)
        _report(builder, message.parent, "failed", None, error)
    builder.emit(RunFailed, reason=reason[:2000], failed_node_id=builder.state.definition.trigger.id)
    return True


def unstartable_child(
    message: StartRun, reason: str, *, now: datetime, new_id: Callable[[], UUID]
) -> Outgoing | None:
    """The report to a waiting parent that its child could not start (no such workflow or version
    there is for its tenant); None for a run without a waiting parent."""
    parent = message.parent
    if parent is None or not parent.wait:
        return None
    report = ReportChildRun(
        message_id=new_id(),
        tenant_id=message.tenant_id,
        occurred_at=now,
        correlation_id=parent.run_id,
        causation_id=message.message_id,
        run_id=parent.run_id,
        node_id=parent.node_id,
        attempt=parent.attempt,
        child_run_id=message.run_id,
        status="not_started",
        error=NodeError(type=NodeErrorType.SUB_WORKFLOW_NOT_FOUND, message=reason[:2000], retryable=False),
    )
    return Outgoing(topic=RUNS_COMMANDS, key=str(parent.run_id), message=report)


def _start_error_workflow(builder: _Builder, reason: str) -> None:
    state = builder.state
    target = state.definition.settings.error_workflow_id
    trigger = state.trigger
    if target is None or target == state.workflow_id or state.workflow_id is None:
        return
    if trigger is not None and trigger.kind == ERROR_WORKFLOW_TRIGGER:
        return
    failed_node = _failed_node(builder)
    error: dict[str, JsonValue]
    node_error = state.node(failed_node).error if failed_node else None
    if node_error is not None:
        error = {"type": node_error.type, "message": node_error.message, "reason": reason}
    else:
        error = {"type": "run_" + state.status.value, "message": reason, "reason": reason}
    data: dict[str, JsonValue] = {
        "run_id": str(state.run_id),
        "workflow_id": str(state.workflow_id),
        "version": state.workflow_version,
        "status": state.status.value,
        "failed_node_id": failed_node,
        "error": error,
        "trigger": trigger.model_dump(mode="json") if trigger else None,
    }
    run_id = builder.new_id()
    builder.emit(ErrorWorkflowRequested, error_run_id=run_id, workflow_id=target)
    start = StartRun(
        message_id=builder.new_id(),
        tenant_id=state.tenant_id,
        occurred_at=builder.now,
        correlation_id=run_id,
        causation_id=builder.message.message_id,
        run_id=run_id,
        workflow_id=target,
        workflow_version=ACTIVE_VERSION,
        trigger=TriggerData(kind=ERROR_WORKFLOW_TRIGGER, data=data),
        idempotency_key=f"error_workflow:{state.run_id}:{state.last_seq}",
    )
    builder.commands.append(Outgoing(topic=RUNS_COMMANDS, key=str(run_id), message=start))


def _failed_node(builder: _Builder) -> str | None:
    for event in reversed(builder.events):
        if isinstance(event, RunFailed):
            return event.failed_node_id
    return None
