"""The ``ai_agent`` node's loop, decided here one message at a time. Pure.

The orchestrator drives the loop and stays the only writer of the run's log: each model turn is a
command to the AI runner (``<key>#m<turn>``) and each tool call a command to the runner class that
does it (``<key>#t<turn>.<index>``, attempt 1: with the run's id, the call's idempotency key), or a
child run for a workflow tool; each is recorded as it happens (``agent.*`` events). A restart of any
service resumes the loop from the log: a turn's answer is stored by the runner under its request's
hash and a record write once per idempotency key, so nothing completed runs or is paid for again.
What the model asks for never widens what the node declared (``language.agent_tools``)."""

from __future__ import annotations

import json
from datetime import timedelta

from millrace_common.contracts.messages.node_commands import (
    NodeError,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.messages.run_commands import ReportChildRun, ResumeRun
from millrace_common.contracts.messages.run_events import (
    AgentToolCallFinished,
    AgentToolCallScheduled,
    AgentTurnCompleted,
    AgentTurnRequested,
    ApprovalDecided,
    ApprovalRequested,
    ChildRunFinished,
    NodeScheduled,
)
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.agent_tools import arguments_hash, call_problem, tool_step
from millrace_common.language.workflow import Node
from millrace_common.language.workflow_configs import AiAgentConfig
from pydantic import JsonValue

from millrace_orchestrator.domain.agent_state import (
    AGENT,
    AgentCall,
    AgentState,
    cut_result,
    is_agent_step,
    parse_calls,
    said_calls,
    split_step,
    step_key,
    structured_answer,
    tool_content,
)
from millrace_orchestrator.domain.building import _Builder, _instance
from millrace_orchestrator.domain.children import request_child_run
from millrace_orchestrator.domain.outcomes import _fail, _refuse, _succeed
from millrace_orchestrator.domain.rendering import _REFUSALS, PayloadTooLarge, _bounded, _render
from millrace_orchestrator.domain.state import NodeStatus, RunStatus, instance_key

__all__ = [
    "AGENT",
    "agent_child_finished",
    "agent_deadline",
    "agent_decided",
    "agent_result",
    "is_agent_step",
    "start_agent",
]

MAX_CALLS_PER_TURN = 50
"""Tool calls one model turn may make; more fail the node (the runner reads at most 200 a message)."""
MAX_MESSAGES = 1_000
"""Messages a conversation may reach (the runner reads at most 1,000)."""
_LITERAL = AiAgentConfig.literal_fields | {"name", "retry", "timeout_seconds", "on_error", "fallback_output"}
_TAKES_RESULTS = (RunStatus.RUNNING, RunStatus.PAUSED)


def start_agent(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    """Render the task and the system prompt, then ask the model for the first turn."""
    key = instance_key(node.id, scope)
    config = node.data.model_dump(mode="json", by_alias=True)
    try:
        rendered = {
            k: (v if k in _LITERAL else _render(builder, node, scope, v))
            for k, v in config.items()
            if k != "name"
        }
        _bounded(rendered, "input")
    except _REFUSALS as problem:
        _refuse(builder, node, scope, attempt, problem)
        return
    builder.emit(NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input=rendered)
    builder.timer("agent_deadline", builder.now + timedelta(seconds=node.data.max_seconds), key, attempt)
    _request_turn(builder, node, scope)


def _agent(builder: _Builder, key: str) -> AgentState | None:
    """The instance's loop while its node waits on it; None once the node ended or the run stopped."""
    state = builder.state
    agent = state.agents.get(key)
    node = state.node(key)
    if (
        agent is None
        or state.status not in _TAKES_RESULTS
        or node.status is not NodeStatus.SCHEDULED
        or node.attempt != agent.attempt
    ):
        return None
    return agent


def _limit(builder: _Builder, node: Node, scope: str, message: str) -> None:
    agent = builder.state.agents[instance_key(node.id, scope)]
    error = NodeError(type=NodeErrorType.AGENT_LIMIT, message=message, retryable=False)
    _fail(builder, node, scope, agent.attempt, error)


def _request_turn(builder: _Builder, node: Node, scope: str, prompt: str | None = None) -> None:
    key = instance_key(node.id, scope)
    agent = builder.state.agents[key]
    config: AiAgentConfig = node.data
    turn = agent.turn + 1
    if turn > config.max_turns:
        _limit(builder, node, scope, f"the agent did not finish within its {config.max_turns} model turns")
        return
    if len(agent.messages) + len(agent.calls) + 1 > MAX_MESSAGES:
        _limit(builder, node, scope, f"the conversation reached {MAX_MESSAGES:,} messages")
        return
    state = builder.state
    step = step_key(key, f"m{turn}")
    builder.emit(
        AgentTurnRequested,
        node_id=key,
        attempt=agent.attempt,
        turn=turn,
        idempotency_key=f"{state.run_id}:{step}:{agent.attempt}",
        prompt=prompt,
    )
    agent = builder.state.agents[key]
    command_input = {
        "model": agent.config.get("model"),
        "temperature": agent.config.get("temperature"),
        "max_tokens": agent.config.get("max_tokens"),
        "messages": list(agent.messages),
        "tools": agent.config.get("tools") or [],
        "turn": turn,
    }
    try:
        _bounded(command_input, "conversation")
    except PayloadTooLarge as problem:
        _limit(builder, node, scope, f"{problem}: lower tool_result_max_chars or max_turns")
        return
    builder.execute("ai_agent", step, agent.attempt, command_input, config.timeout_seconds)


# -- results ------------------------------------------------------------------------------------------


def agent_result(builder: _Builder, message: NodeSucceededResult | NodeFailedResult) -> None:
    """A model turn's answer or a tool call's result; anything stale (an earlier attempt's turn, a
    call already ended, a run that stopped) changes nothing."""
    key, step = split_step(message.node_id)
    agent = _agent(builder, key)
    if agent is None:
        return
    node, scope = _instance(builder.state, key)
    if step.startswith("m"):
        if step != f"m{agent.turn}" or agent.answered == agent.turn or message.attempt != agent.attempt:
            return
        if isinstance(message, NodeFailedResult):
            _fail(builder, node, scope, agent.attempt, message.error, duration_ms=message.duration_ms)
            return
        _answered(builder, node, scope, message.output)
        return
    call = agent.calls.get(message.node_id)
    if call is None or call.finished or call.awaiting_approval:
        return
    if isinstance(message, NodeSucceededResult):
        _finish_call(builder, node, scope, message.node_id, "succeeded", tool_content(agent, message.output))
    else:
        text = f"the tool failed ({message.error.type}): {message.error.message}"
        _finish_call(builder, node, scope, message.node_id, "failed", cut_result(agent, text))


def _answered(builder: _Builder, node: Node, scope: str, output: dict[str, JsonValue]) -> None:
    key = instance_key(node.id, scope)
    agent = builder.state.agents[key]
    config: AiAgentConfig = node.data
    said = output.get("message")
    assistant = dict(said) if isinstance(said, dict) else {"role": "assistant", "content": None}
    assistant["role"] = "assistant"
    calls = parse_calls(output, assistant)
    if calls:
        assistant["tool_calls"] = said_calls(assistant, calls)
    else:
        assistant.pop("tool_calls", None)
        assistant["content"] = assistant.get("content") or ""
    usage = output.get("usage")
    builder.emit(
        AgentTurnCompleted,
        node_id=key,
        attempt=agent.attempt,
        turn=agent.turn,
        message=assistant,
        model=str(output.get("model") or ""),
        usage=usage if isinstance(usage, dict) else {},
        cached=output.get("cached") is True,
    )
    agent = builder.state.agents[key]
    if agent.total_tokens > config.max_total_tokens:
        _limit(
            builder,
            node,
            scope,
            f"the agent used {agent.total_tokens:,} tokens, "
            f"over its max_total_tokens of {config.max_total_tokens:,}",
        )
        return
    if not calls:
        _final(builder, node, scope, assistant)
        return
    if agent.turn >= config.max_turns:  # its calls would only be answered to a turn it may not take
        _limit(builder, node, scope, f"the agent did not finish within its {config.max_turns} model turns")
        return
    if len(calls) > MAX_CALLS_PER_TURN:
        _limit(
            builder,
            node,
            scope,
            f"the model asked for {len(calls)} tool calls in one turn (at most {MAX_CALLS_PER_TURN})",
        )
        return
    for index, (call_id, name, arguments, problem) in enumerate(calls):
        _call(builder, node, scope, index, call_id, name, arguments, problem)
    _next_turn_if_done(builder, node, scope)


def _call(
    builder: _Builder,
    node: Node,
    scope: str,
    index: int,
    call_id: str,
    name: str,
    arguments: object,
    problem: str | None,
) -> None:
    key = instance_key(node.id, scope)
    agent = builder.state.agents[key]
    config: AiAgentConfig = node.data
    # The call's place and what it is: a later attempt that asks the same reuses the key (a record
    # write is not made twice), one that asks something else gets a key of its own.
    step = step_key(key, f"t{agent.turn}.{index}.{arguments_hash(name, arguments)[:12]}")
    if problem is None:
        problem = (
            "the arguments are not a JSON object"
            if not isinstance(arguments, dict)
            else call_problem(config, name, arguments)
        )
    if problem is None and agent.tool_calls >= config.max_tool_calls:
        problem = f"not run: the node's limit of {config.max_tool_calls} tool calls is reached; answer now"
    if problem is not None:
        builder.emit(
            AgentToolCallFinished,
            node_id=key,
            attempt=agent.attempt,
            turn=agent.turn,
            call_id=call_id,
            step=step,
            tool=name[:200],
            outcome="refused",
            content=cut_result(agent, f"error: {problem}"),
        )
        return
    assert isinstance(arguments, dict)
    how = tool_step(config, name, arguments)
    builder.emit(
        AgentToolCallScheduled,
        node_id=key,
        attempt=agent.attempt,
        turn=agent.turn,
        call_id=call_id,
        step=step,
        tool=name,
        arguments=arguments,
        idempotency_key=f"{builder.state.run_id}:{step}:1",
        awaiting_approval=how.needs_approval,
    )
    if how.needs_approval:
        _ask_approver(builder, node, scope, step, name, arguments)
        return
    _run_call(builder, node, scope, step, name, arguments)


def _run_call(builder: _Builder, node: Node, scope: str, step: str, name: str, arguments: dict) -> None:
    how = tool_step(node.data, name, arguments)
    if how.kind == "node":
        builder.execute(how.node_type, step, 1, how.input, how.timeout_seconds)
        return
    assert how.workflow_id is not None
    state = builder.state
    depth = (state.parent.depth if state.parent else 0) + 1
    if depth > builder.max_depth:
        reason = f"not run: it would nest {depth} runs, past the limit of {builder.max_depth}"
        _finish_call(builder, node, scope, step, "refused", reason)
        return
    request_child_run(builder, step, 1, how.workflow_id, how.version, how.input)


def _ask_approver(builder: _Builder, node: Node, scope: str, step: str, name: str, arguments: dict) -> None:
    config: AiAgentConfig = node.data
    state = builder.state
    assert config.approver is not None and state.workflow_id is not None
    shown = json.dumps(arguments, sort_keys=True)
    builder.emit(
        ApprovalRequested,
        node_id=step,
        workflow_id=state.workflow_id,
        assignee=config.approver.model_dump(mode="json", exclude_none=True),
        title=f"Allow the agent '{config.name}' to call {name}?",
        description=f"{name}({shown[:2000]})",
        data={
            "tool": name,
            "arguments": arguments,
            "arguments_sha256": arguments_hash(name, arguments),
            "agent_node": instance_key(node.id, scope),
        },
        requested_by=state.trigger.started_by if state.trigger else None,
        # The approval checks the model, not a colleague: whoever started the run may allow its calls.
        allow_self_approval=True,
    )


def agent_decided(builder: _Builder, message: ResumeRun) -> None:
    """The approver's decision on a call: approved, it runs with the arguments the log holds (those
    the approval showed and hashed); otherwise the model is told it was not allowed."""
    key, _ = split_step(message.node_id)
    agent = _agent(builder, key)
    call = agent.calls.get(message.node_id) if agent else None
    if agent is None or call is None or not call.awaiting_approval:
        return
    node, scope = _instance(builder.state, key)
    builder.emit(
        ApprovalDecided,
        node_id=message.node_id,
        decision=message.decision,
        decided_by=message.decided_by,
        note=message.note,
    )
    if message.decision == "approved":
        _run_call(builder, node, scope, message.node_id, call.tool, dict(call.arguments))
        return
    why = (
        "the approver rejected this call" if message.decision == "rejected" else "no one approved it in time"
    )
    note = f": {message.note}" if message.note else ""
    _finish_call(
        builder, node, scope, message.node_id, "rejected", cut_result(agent, f"not run: {why}{note}")
    )


def agent_child_finished(builder: _Builder, message: ReportChildRun) -> None:
    """A workflow tool's run ended: its final output is the call's result."""
    key, _ = split_step(message.node_id)
    agent = _agent(builder, key)
    call = agent.calls.get(message.node_id) if agent else None
    child = builder.state.children.get(message.node_id)
    if (
        agent is None
        or call is None
        or call.finished
        or child is None
        or child.run_id != message.child_run_id
    ):
        return
    node, scope = _instance(builder.state, key)
    builder.emit(
        ChildRunFinished,
        node_id=message.node_id,
        attempt=message.attempt,
        child_run_id=message.child_run_id,
        status=message.status,
    )
    if message.status == "completed":
        content = tool_content(agent, message.output or {})
        _finish_call(builder, node, scope, message.node_id, "succeeded", content)
        return
    reason = message.error.message if message.error else f"the run ended {message.status}"
    _finish_call(
        builder, node, scope, message.node_id, "failed", cut_result(agent, f"the workflow failed: {reason}")
    )


def _finish_call(builder: _Builder, node: Node, scope: str, step: str, outcome: str, content: str) -> None:
    key = instance_key(node.id, scope)
    agent = builder.state.agents[key]
    call: AgentCall = agent.calls[step]
    builder.emit(
        AgentToolCallFinished,
        node_id=key,
        attempt=agent.attempt,
        turn=agent.turn,
        call_id=call.call_id,
        step=step,
        tool=call.tool,
        outcome=outcome,
        content=content,
    )
    _next_turn_if_done(builder, node, scope)


def _next_turn_if_done(builder: _Builder, node: Node, scope: str) -> None:
    if builder.state.agents[instance_key(node.id, scope)].turn_done:
        _request_turn(builder, node, scope)


def _final(builder: _Builder, node: Node, scope: str, assistant: dict[str, JsonValue]) -> None:
    """A turn without tool calls is the answer; one that breaks the node's output schema is sent back
    with the reason, as one more turn."""
    key = instance_key(node.id, scope)
    agent = builder.state.agents[key]
    config: AiAgentConfig = node.data
    answer = str(assistant.get("content") or "")
    data: JsonValue = None
    if config.output_schema is not None:
        data, problem = structured_answer(config.output_schema, answer)
        if problem is not None:
            _request_turn(
                builder, node, scope, prompt=f"Your answer was not accepted: {problem}. Answer again."
            )
            return
    output: dict[str, JsonValue] = {
        "answer": answer,
        "data": data,
        "turns": agent.answered,
        "tool_calls": agent.tool_calls,
        "usage": {
            "prompt_tokens": agent.prompt_tokens,
            "completion_tokens": agent.completion_tokens,
            "total_tokens": agent.total_tokens,
        },
        "model": agent.model,
        "transcript": [dict(m) for m in agent.messages[1:]],
    }
    try:
        _bounded(output, "output")
    except PayloadTooLarge:
        output["transcript"] = [
            {"role": "note", "content": "too long to keep here: the run's log has every turn"}
        ]
    took = (builder.now - agent.started_at).total_seconds() * 1000 if agent.started_at else 0.0
    _succeed(builder, node, scope, agent.attempt, output, duration_ms=max(took, 0.0))


def agent_deadline(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    """The loop's wall time ran out: the approvals its calls still wait for are closed (so no one is
    left deciding a call that will not run), and the node fails."""
    key = instance_key(node.id, scope)
    agent = _agent(builder, key)
    if agent is None or agent.attempt != attempt:
        return
    for step, call in sorted(agent.calls.items()):
        if call.awaiting_approval:
            note = "the agent's max_seconds passed first"
            builder.emit(ApprovalDecided, node_id=step, decision="timeout", decided_by=None, note=note)
    seconds = node.data.max_seconds
    _limit(builder, node, scope, f"the agent did not finish within its max_seconds of {seconds:g} s")
