"""The ends of a wait: a fired timer (the run's timeout, a retry's back-off, a delay, an approval's
deadline) and a decided approval."""

from __future__ import annotations

from millrace_common.contracts.messages.run_events import (
    ApprovalDecided,
    RunTimedOut,
    TimerFired,
    TimerScheduled,
)
from millrace_common.language.workflow import Node

from millrace_orchestrator.domain.agent import AGENT, agent_deadline, start_agent
from millrace_orchestrator.domain.building import _Builder, _instance
from millrace_orchestrator.domain.children import SUB_WORKFLOW, _start_child
from millrace_orchestrator.domain.nodes import _dispatch
from millrace_orchestrator.domain.outcomes import _succeed
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, instance_key, split_key
from millrace_orchestrator.domain.waits import event_wait_timed_out


def _fire(builder: _Builder, timer: TimerScheduled) -> None:
    builder.emit(TimerFired, timer_id=timer.timer_id)
    status = builder.state.status
    # A paused run does not time out while a person decides (it gets a new timeout when it goes on);
    # its other nodes' retries, delays and deadlines go on.
    if status is not RunStatus.RUNNING and not (
        status is RunStatus.PAUSED and timer.purpose != "run_timeout"
    ):
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
        start = {SUB_WORKFLOW: _start_child, AGENT: start_agent}.get(node.type, _dispatch)
        start(builder, node, scope, timer.attempt + 1)
    elif timer.purpose == "delay" and current.status is NodeStatus.SCHEDULED:
        _succeed(builder, node, scope, timer.attempt, {"waited_until": timer.fire_at.isoformat()})
    elif timer.purpose == "approval_deadline" and current.status is NodeStatus.SCHEDULED:
        _decided(builder, node, scope, "timeout", None, "the deadline passed")
    elif timer.purpose == "event_wait" and current.status is NodeStatus.SCHEDULED:
        event_wait_timed_out(builder, node, scope, timer.attempt)
    elif timer.purpose == "agent_deadline" and current.status is NodeStatus.SCHEDULED:
        agent_deadline(builder, node, scope, timer.attempt)
    # A "node_timeout" timer (scheduled by older versions as a backstop) does nothing: the runner
    # ends an overrunning node with a `timeout` result itself, and a runner that dies mid-command
    # leaves the command's offset uncommitted, so the next runner receives it again, as the same
    # attempt under the same idempotency key. While a result may still come, the node waits.


def _awaits_decision(state: RunState, key: str) -> bool:
    node_id, _ = split_key(key)
    known = {n.id: n.type for n in state.definition.nodes}
    return (
        state.status in (RunStatus.RUNNING, RunStatus.PAUSED)
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
