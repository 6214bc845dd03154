"""Decisions: what happens to a run when a message arrives. Pure: the clock and ids come in.

``decide`` is the entry point; the steps it takes live beside it: ``building`` (the decision and its
builder), ``load`` (a workflow's load and throttling), ``nodes`` (starting a node), ``outcomes`` (a
node's success, failure and retries), ``timers`` (fired timers and decided approvals), ``settle``
(the graph walk and for_each loops), ``agent`` (the ai_agent node's loop) and ``rendering``
(templates, conditions and payload bounds)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from uuid import UUID

from millrace_common.contracts.messages.node_commands import NodeFailedResult, NodeSucceededResult
from millrace_common.contracts.messages.run_commands import (
    CancelRun,
    ContinueRun,
    DeliverRecordEvent,
    FireTimer,
    ReportChildRun,
    ResumeRun,
    RetryRun,
    SignalRun,
    StartRun,
)
from millrace_common.contracts.messages.run_events import (
    RunCancelled,
    RunContinued,
    RunRetried,
    RunStarted,
    RunThrottled,
)

from millrace_orchestrator.domain.agent import (
    agent_child_finished,
    agent_decided,
    agent_result,
    is_agent_step,
)
from millrace_orchestrator.domain.building import (
    DEFAULT_SUB_WORKFLOW_MAX_DEPTH,
    Decision,
    Message,
    _Builder,
    _instance,
)
from millrace_orchestrator.domain.children import (
    _after_decision,
    _awaits_child,
    _child_finished,
    _refuse_input,
)
from millrace_orchestrator.domain.load import (
    WorkflowLoad,
    WorkflowStarts,
    running_change,
    starts_by_workflow,
    throttle_reason,
)
from millrace_orchestrator.domain.outcomes import _fail, _is_current_attempt, _succeed, backoff, retry_policy
from millrace_orchestrator.domain.rendering import PayloadTooLarge, template_context
from millrace_orchestrator.domain.settle import ERROR_HANDLE, _settle
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus
from millrace_orchestrator.domain.timers import _awaits_decision, _decided, _fire
from millrace_orchestrator.domain.waits import deliver_record_event, deliver_signal, register_record_waits

__all__ = [
    "DEFAULT_SUB_WORKFLOW_MAX_DEPTH",
    "ERROR_HANDLE",
    "Decision",
    "Message",
    "PayloadTooLarge",
    "WorkflowLoad",
    "WorkflowStarts",
    "backoff",
    "decide",
    "retry_policy",
    "running_change",
    "starts_by_workflow",
    "template_context",
    "throttle_reason",
]


def decide(
    state: RunState,
    message: Message,
    *,
    now: datetime,
    new_id: Callable[[], UUID],
    load: WorkflowLoad | None = None,
    max_depth: int = DEFAULT_SUB_WORKFLOW_MAX_DEPTH,
) -> Decision:
    """Events and commands that follow from ``message``; a message that changes nothing yields none.
    ``max_depth`` bounds how many sub-workflow runs nest below a top-level run."""
    builder = _Builder(state, message, now, new_id, max_depth)
    was = state.status
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
                _after_decision(builder, was)
                return builder.decision()
            if _refuse_input(builder, message):
                _after_decision(builder, was)
                return builder.decision()
            _start_run(builder, message)
        case CancelRun():
            if state.status not in (RunStatus.RUNNING, RunStatus.PAUSED):
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
        case ContinueRun():
            if state.status is not RunStatus.PAUSED:
                return Decision()
            _continue(builder, message)
        case FireTimer():
            if message.timer_id not in state.timers:
                return Decision()
            _fire(builder, state.timers[message.timer_id])
        case NodeSucceededResult() | NodeFailedResult() if is_agent_step(message.node_id):
            agent_result(builder, message)
        case ResumeRun() if is_agent_step(message.node_id):
            agent_decided(builder, message)
        case ReportChildRun() if is_agent_step(message.node_id):
            agent_child_finished(builder, message)
        case ResumeRun() if _awaits_decision(state, message.node_id):
            node, scope = _instance(state, message.node_id)
            _decided(builder, node, scope, message.decision, message.decided_by, message.note)
        case SignalRun():
            deliver_signal(builder, message)
        case DeliverRecordEvent():
            deliver_record_event(builder, message)
        case NodeSucceededResult() if _is_current_attempt(state, message):
            node, scope = _instance(state, message.node_id)
            _succeed(builder, node, scope, message.attempt, message.output, duration_ms=message.duration_ms)
        case NodeFailedResult() if _is_current_attempt(state, message):
            node, scope = _instance(state, message.node_id)
            _fail(builder, node, scope, message.attempt, message.error, duration_ms=message.duration_ms)
        case ReportChildRun() if _awaits_child(state, message):
            _child_finished(builder, message)
        case _:
            return Decision()
    _settle(builder)
    _after_decision(builder, was)
    return builder.decision()


def _continue(builder: _Builder, message: ContinueRun) -> None:
    """The node the run paused on runs again, or is passed over with an empty output; the run's
    timeout starts again, as after a retry (a paused run fires none of its timers)."""
    paused = builder.state.paused_nodes
    builder.emit(RunContinued, node_ids=paused, action=message.action, requested_by=message.requested_by)
    if message.action == "skip":
        for key in paused:
            node, scope = _instance(builder.state, key)
            _succeed(builder, node, scope, builder.state.node(key).attempt, {})
    minutes = builder.state.definition.settings.timeout_minutes
    builder.timer("run_timeout", builder.now + timedelta(minutes=minutes))


def _start_run(builder: _Builder, message: StartRun) -> None:
    builder.emit(
        RunStarted,
        workflow_id=message.workflow_id,
        # A run asked for as "the active version" gets the version its definition was loaded as.
        workflow_version=message.workflow_version or builder.state.workflow_version,
        trigger=message.trigger,
        parent=message.parent,
        received_at=min(message.occurred_at, builder.now),  # a sender's clock ahead of ours: ours
    )
    settings = builder.state.definition.settings
    builder.timer("run_timeout", builder.now + timedelta(minutes=settings.timeout_minutes))
    register_record_waits(builder)
    trigger = builder.state.definition.trigger
    output = {"kind": message.trigger.kind, "data": message.trigger.data}
    _succeed(builder, trigger, "", 1, output)
