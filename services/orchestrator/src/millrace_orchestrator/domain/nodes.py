"""Starting a node: a control node is evaluated in place, a wait or an approval is scheduled, and a
side-effecting node is sent to its runner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_events import ApprovalRequested, NodeScheduled
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.templating import TemplateError
from millrace_common.language.workflow import Node, node_types

from millrace_orchestrator.domain.agent import start_agent
from millrace_orchestrator.domain.building import _Builder
from millrace_orchestrator.domain.children import _start_child
from millrace_orchestrator.domain.outcomes import _fail, _refuse, _succeed
from millrace_orchestrator.domain.rendering import (
    _REFUSALS,
    _bounded,
    _holds,
    _render,
    loop_items,
    template_context,
)
from millrace_orchestrator.domain.state import instance_key
from millrace_orchestrator.domain.waits import WAITING_TYPES, start_waiting_node


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
            case "sub_workflow":
                _start_child(builder, node, scope, attempt)
            case "ai_agent":
                start_agent(builder, node, scope, attempt)
            case "for_each":
                items = _render(builder, node, scope, node.data.items)
                if not isinstance(items, list):
                    raise TemplateError(f"'items' rendered to {type(items).__name__}, not a list")
                _bounded(items, "items")
                builder.emit(
                    NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input={"items": items}
                )
            case node_type if node_type in WAITING_TYPES:
                start_waiting_node(builder, node, scope, attempt)
            case node_type if node_type in node_types().runner_topics():
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


def _request_approval(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    key = instance_key(node.id, scope)
    config = node.data
    title = _render(builder, node, scope, config.title)
    description = _render(builder, node, scope, config.description)
    context = template_context(builder.state, node.parent_id, scope)
    snapshot = {"trigger": context["trigger"], "nodes": context["nodes"], "vars": context["vars"]}
    snapshot |= {k: v for k, v in loop_items(builder.state, node.parent_id, scope).items() if k != "index"}
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


def _dispatch(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    """Send the node's command to its runner."""
    key = instance_key(node.id, scope)
    try:
        rendered = node.data.runner_input(
            lambda: template_context(builder.state, node.parent_id, scope),
            now=builder.now,
            new_id=builder.new_id,
        )
        _bounded(rendered, "input")
    except _REFUSALS as problem:  # also when a retry or a redelivery sends it (outside _start)
        _refuse(builder, node, scope, attempt, problem)
        return
    builder.emit(NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input=rendered)
    builder.execute(node.type, key, attempt, rendered, node.data.timeout_seconds)
