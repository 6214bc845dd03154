"""The nodes that wait on the world outside the run: ``wait_for_event`` (resumed by a signal sent to the
run, or by its timeout timer) and ``respond_to_webhook`` (the answer of the webhook call that started
the run). Pure, like the rest of the core; ``nodes``, ``decide`` and ``timers`` call in here."""

from __future__ import annotations

from datetime import datetime, timedelta

from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_commands import DeliverRecordEvent, SignalRun
from millrace_common.contracts.messages.run_events import (
    EventBuffered,
    EventTaken,
    NodeScheduled,
    RecordWaitRegistered,
    WebhookResponded,
)
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.conditions import evaluate
from millrace_common.language.workflow import Node
from millrace_common.language.workflow_configs import WaitForEventConfig
from millrace_common.language.workflow_configs.waits import MAX_BUFFERED_EVENTS
from pydantic import JsonValue

from millrace_orchestrator.domain.building import _Builder, _instance
from millrace_orchestrator.domain.outcomes import _fail, _succeed
from millrace_orchestrator.domain.rendering import _REFUSALS, _bounded, _render
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, instance_key, split_key

WAITING_TYPES = frozenset({"wait_for_event", "respond_to_webhook"})
EVENT_HANDLE = "event"
TIMEOUT_HANDLE = "timeout"


def start_waiting_node(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    """Start a ``wait_for_event`` or ``respond_to_webhook`` node (their templates may raise the
    refusals ``nodes._start`` turns into a failed node)."""
    if node.type == "respond_to_webhook":
        _respond(builder, node, scope, attempt)
    else:
        _wait_for_event(builder, node, scope, attempt)


def _respond(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    key = instance_key(node.id, scope)
    trigger = builder.state.trigger
    if trigger is None or trigger.kind != "webhook":
        kind = trigger.kind if trigger else "none"
        error = NodeError(
            type=NodeErrorType.NOT_A_WEBHOOK_RUN,
            message=f"respond_to_webhook answers a webhook call, and this run was started by {kind!r}",
            retryable=False,
        )
        _fail(builder, node, scope, attempt, error)
        return
    config = node.data
    headers = _render(builder, node, scope, dict(config.headers))
    body = _render(builder, node, scope, config.body)
    answer: dict[str, JsonValue] = {
        "status": config.status,
        "headers": {str(k): str(v) for k, v in (headers if isinstance(headers, dict) else {}).items()},
        "body": body,
    }
    _bounded(answer, "output")
    builder.emit(NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input=answer)
    builder.emit(WebhookResponded, node_id=key, status=config.status, headers=answer["headers"], body=body)
    _succeed(builder, node, scope, attempt, answer)


def _wait_for_event(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    key = instance_key(node.id, scope)
    config: WaitForEventConfig = node.data
    until = builder.now + timedelta(seconds=config.wait_seconds) if config.wait_seconds else None
    waits_for: dict[str, JsonValue] = {"event": config.event}
    record_id = None
    if config.event == "record":
        record_id = str(_render(builder, node, scope, config.record_id))
        waits_for |= {"pipeline_id": config.pipeline_id, "record_id": record_id}
    else:
        waits_for["signal_name"] = config.signal_name
    if until is not None:
        waits_for["until"] = until.isoformat()
    builder.emit(NodeScheduled, node_id=key, node_type=node.type, attempt=attempt, input=waits_for)
    if config.accept_earlier_events:
        kept = _earliest_kept(builder.state, config, builder.now, record_id)
        if kept is not None:
            builder.emit(EventTaken, event_id=kept.event_id, node_id=key)
            _resume(builder, node, scope, attempt, kept.source, kept.name, kept.payload, kept.received_at)
            return
    if until is not None:
        builder.timer("event_wait", until, key, attempt)


def _earliest_kept(
    state: RunState, config: WaitForEventConfig, now: datetime, record_id: str | None
) -> EventBuffered | None:
    keep = timedelta(seconds=config.keep_earlier_events_seconds)
    candidates = [
        kept
        for kept in state.buffered.values()
        if kept.source == config.event
        and (
            kept.name == config.signal_name
            if config.event == "signal"
            else _record_of(kept.payload) == (config.pipeline_id, record_id)
        )
        and kept.received_at + keep >= now
        and kept.expires_at >= now
        and _matches(config, kept.source, kept.name, kept.payload, now)
    ]
    return min(candidates, key=lambda kept: (kept.received_at, kept.seq), default=None)


def _matches(config: WaitForEventConfig, source: str, name: str, payload: JsonValue, now: datetime) -> bool:
    """Whether the node's condition holds for the event (an event it cannot be evaluated on does not)."""
    if config.condition is None:
        return True
    try:
        return evaluate(config.condition, {"source": source, "name": name, "payload": payload}, now=now)
    except ValueError:
        return False


def _resume(
    builder: _Builder,
    node: Node,
    scope: str,
    attempt: int,
    source: str,
    name: str,
    payload: JsonValue,
    received_at: datetime,
) -> None:
    output: dict[str, JsonValue] = {
        "source": source,
        "name": name,
        "payload": payload,
        "received_at": received_at.isoformat(),
    }
    _succeed(builder, node, scope, attempt, output, handles=(EVENT_HANDLE,))


def waiting_for_signal(state: RunState, name: str) -> list[str]:
    """The node instances that wait for the signal ``name`` now, in key order."""
    waiting = {
        n.id
        for n in state.definition.nodes
        if n.type == "wait_for_event" and n.data.event == "signal" and n.data.signal_name == name
    }
    if not waiting:
        return []
    return sorted(
        key
        for key, node in state.nodes.items()
        if node.status is NodeStatus.SCHEDULED and split_key(key)[0] in waiting
    )


def deliver_signal(builder: _Builder, signal: SignalRun) -> None:
    """Every node waiting for the signal whose condition holds for it resumes with it; if none does,
    it is kept for a node that accepts earlier events (until the longest of their keeping times)."""
    state = builder.state
    if state.status not in (RunStatus.RUNNING, RunStatus.PAUSED):
        return
    resumed = False
    for key in waiting_for_signal(state, signal.name):
        node, scope = _instance(state, key)
        if _matches(node.data, "signal", signal.name, signal.payload, builder.now):
            attempt = builder.state.node(key).attempt
            _resume(builder, node, scope, attempt, "signal", signal.name, signal.payload, builder.now)
            resumed = True
    if resumed:
        return
    keep = _keeping_seconds(state, signal.name)
    live = [kept for kept in state.buffered.values() if kept.expires_at >= builder.now]
    if keep is None or len(live) >= MAX_BUFFERED_EVENTS:
        return
    builder.emit(
        EventBuffered,
        event_id=signal.message_id,
        source="signal",
        name=signal.name,
        payload=signal.payload,
        received_at=builder.now,
        expires_at=builder.now + timedelta(seconds=keep),
    )


def _keeping_seconds(state: RunState, name: str) -> int | None:
    """How long a signal ``name`` is kept for this run's nodes (None: no node keeps it)."""
    seconds = [
        n.data.keep_earlier_events_seconds
        for n in state.definition.nodes
        if n.type == "wait_for_event"
        and n.data.event == "signal"
        and n.data.signal_name == name
        and n.data.accept_earlier_events
    ]
    return max(seconds, default=None)


def event_wait_timed_out(builder: _Builder, node: Node, scope: str, attempt: int) -> None:
    """The node's wait ran out: it succeeds along its ``timeout`` handle."""
    output: dict[str, JsonValue] = {"source": "timeout", "name": None, "payload": None, "received_at": None}
    _succeed(builder, node, scope, attempt, output, handles=(TIMEOUT_HANDLE,))


def _record_of(payload: JsonValue) -> tuple[str, str] | None:
    """The (pipeline, record id) a kept record event is about."""
    record = payload.get("record") if isinstance(payload, dict) else None
    if not isinstance(record, dict):
        return None
    return str(record.get("pipeline_id")), str(record.get("id"))


def register_record_waits(builder: _Builder) -> None:
    """At the run's start: each top-level node that keeps earlier record events, and whose record id
    the trigger alone names, asks for the record's events now (``run_event_waits``)."""
    for node in builder.state.definition.nodes:
        config = node.data
        if (
            node.type != "wait_for_event"
            or node.parent_id is not None
            or config.event != "record"
            or not config.accept_earlier_events
        ):
            continue
        try:
            record_id = _render(builder, node, "", config.record_id)
        except _REFUSALS:
            continue  # it names the record from later nodes: the wait begins when the node does
        builder.emit(
            RecordWaitRegistered, node_id=node.id, pipeline_id=config.pipeline_id, record_id=str(record_id)
        )


def deliver_record_event(builder: _Builder, event: DeliverRecordEvent) -> None:
    """A record event for a node of the run: the node resumes with it when it waits and its condition
    holds; a node that has not started yet and keeps earlier events has it kept."""
    state = builder.state
    if state.status not in (RunStatus.RUNNING, RunStatus.PAUSED):
        return
    node_id, scope = split_key(event.node_id)
    known = {n.id: n for n in state.definition.nodes}
    node = known.get(node_id)
    if node is None or node.type != "wait_for_event" or node.data.event != "record":
        return
    payload: dict[str, JsonValue] = {
        "event_type": event.event_type,
        "event_id": str(event.event_id),
        "occurred_at": event.occurred_at.isoformat(),
        "record": {
            "id": event.record_id,
            "pipeline_id": event.pipeline_id,
            "data": event.data,
            "old_data": event.old_data,
        },
    }
    current = state.node(event.node_id)
    if current.status is NodeStatus.SCHEDULED:
        if _matches(node.data, "record", event.event_type, payload, builder.now):
            _resume(builder, node, scope, current.attempt, "record", event.event_type, payload, builder.now)
        return
    live = [kept for kept in state.buffered.values() if kept.expires_at >= builder.now]
    if (
        current.status is NodeStatus.PENDING
        and node.data.accept_earlier_events
        and event.event_id not in state.buffered
        and len(live) < MAX_BUFFERED_EVENTS
    ):
        builder.emit(
            EventBuffered,
            event_id=event.event_id,
            source="record",
            name=event.event_type,
            payload=payload,
            received_at=builder.now,
            expires_at=builder.now + timedelta(seconds=node.data.keep_earlier_events_seconds),
        )
