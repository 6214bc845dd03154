"""Run events: the orchestrator's append-only log, also published on ``runs.events`` for observers."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, JsonValue, TypeAdapter

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.envelope import Envelope
from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_commands import ChildRunStatus, ParentRun, TriggerData


class RunEvent(Envelope):
    run_id: UUID
    seq: int = Field(default=0, ge=0, description="Position in the run's log, assigned when appended")


class RunStarted(RunEvent):
    type: Literal["run.started"] = "run.started"
    workflow_id: UUID
    workflow_version: int
    trigger: TriggerData
    parent: ParentRun | None = Field(
        default=None, description="The run that started this one as a sub-workflow"
    )
    received_at: datetime | None = Field(
        default=None,
        description="When the trigger (or the gateway) received what started the run: the start "
        "command's time. The run's started_at, so its duration counts from the caller's request",
    )


class NodeScheduled(RunEvent):
    type: Literal["node.scheduled"] = "node.scheduled"
    node_id: str
    node_type: str
    attempt: int
    input: JsonObject


class NodeSucceeded(RunEvent):
    type: Literal["node.succeeded"] = "node.succeeded"
    node_id: str
    node_type: str
    attempt: int
    output: JsonObject
    duration_ms: float
    taken_handles: tuple[str, ...] | None = Field(
        default=None, description="Outgoing handles followed; None follows every non-error edge"
    )


class NodeFailed(RunEvent):
    type: Literal["node.failed"] = "node.failed"
    node_id: str
    node_type: str
    attempt: int
    error: NodeError
    duration_ms: float


class NodeSkipped(RunEvent):
    type: Literal["node.skipped"] = "node.skipped"
    node_id: str
    node_type: str


class RunCompleted(RunEvent):
    type: Literal["run.completed"] = "run.completed"
    final_output: JsonObject | None = Field(
        default=None,
        description="The output of the top-level end node that finished last; None when no end node ran",
    )


class RunFailed(RunEvent):
    type: Literal["run.failed"] = "run.failed"
    reason: str
    failed_node_id: str | None = None


TimerPurpose = Literal[
    "retry", "delay", "node_timeout", "run_timeout", "approval_deadline", "event_wait", "agent_deadline"
]


class TimerScheduled(RunEvent):
    """A durable timer: kept in PostgreSQL, fired after restarts."""

    type: Literal["timer.scheduled"] = "timer.scheduled"
    timer_id: UUID
    fire_at: datetime
    purpose: TimerPurpose
    node_id: str | None = None
    attempt: int | None = None


class TimerFired(RunEvent):
    type: Literal["timer.fired"] = "timer.fired"
    timer_id: UUID


class NodeRetryScheduled(RunEvent):
    """The attempt failed with a retryable error; the next attempt starts when its timer fires."""

    type: Literal["node.retry_scheduled"] = "node.retry_scheduled"
    node_id: str
    node_type: str
    attempt: int
    error: NodeError
    retry_at: datetime


class ForEachItemScheduled(RunEvent):
    """Item ``index`` of the for_each ``node_id`` (a node instance key) starts its body."""

    type: Literal["for_each.item_scheduled"] = "for_each.item_scheduled"
    node_id: str
    index: int


class ForEachItemCompleted(RunEvent):
    type: Literal["for_each.item_completed"] = "for_each.item_completed"
    node_id: str
    index: int
    outcome: Literal["succeeded", "failed"]
    result: JsonValue = None
    error: NodeError | None = None


class ApprovalRequested(RunEvent):
    """The run waits for a person; the approval service takes it from here."""

    type: Literal["approval.requested"] = "approval.requested"
    node_id: str
    workflow_id: UUID
    assignee: JsonObject
    title: str
    description: str = ""
    data: JsonObject = Field(
        default_factory=dict, description="What the approver sees, frozen at request time"
    )
    deadline_at: datetime | None = None
    on_deadline: Literal["escalate", "timeout"] = "timeout"
    escalate_to: JsonObject | None = None
    quorum: int = 1
    allow_self_approval: bool = False
    requested_by: str | None = Field(default=None, description="Who started the run, when a person did")


class ApprovalDecided(RunEvent):
    type: Literal["approval.decided"] = "approval.decided"
    node_id: str
    decision: Literal["approved", "rejected", "timeout"]
    decided_by: str | None = None
    note: str = ""


class RunThrottled(RunEvent):
    """The run was asked for but not started: its workflow is at one of its limits."""

    type: Literal["run.throttled"] = "run.throttled"
    workflow_id: UUID
    workflow_version: int
    trigger: TriggerData
    reason: str


class RunTimedOut(RunEvent):
    type: Literal["run.timed_out"] = "run.timed_out"
    reason: str


class RunCancelled(RunEvent):
    type: Literal["run.cancelled"] = "run.cancelled"
    reason: str
    requested_by: str | None = None


class RunPaused(RunEvent):
    """A node failed after its last attempt and its ``on_error`` is ``pause``: the run waits for a
    person to retry or skip the node (``run.continue``); its owner is given a task to decide."""

    type: Literal["run.paused"] = "run.paused"
    node_id: str
    reason: str
    notify: JsonObject = Field(
        description="Who is asked to decide: {'user': ...} (the workflow's owner, or the person who "
        "started the run) or {'role': 'admin'}"
    )


class RunContinued(RunEvent):
    """A paused run goes on: its failed node runs again (``retry``) or is passed over (``skip``)."""

    type: Literal["run.continued"] = "run.continued"
    node_ids: tuple[str, ...] = Field(description="The nodes the run was paused on")
    action: Literal["retry", "skip"]
    requested_by: str | None = None


class RunRetried(RunEvent):
    """The failed nodes go back to pending; the next attempt of each follows."""

    type: Literal["run.retried"] = "run.retried"
    node_ids: tuple[str, ...]
    requested_by: str | None = None


class ChildRunRequested(RunEvent):
    """A ``sub_workflow`` node asked for a run of another workflow (the child)."""

    type: Literal["child_run.requested"] = "child_run.requested"
    node_id: str
    attempt: int
    child_run_id: UUID
    workflow_id: UUID
    workflow_version: int = Field(description="The pinned version; 0: the active one when it starts")
    mode: Literal["wait", "fire_and_forget"]


class ChildRunFinished(RunEvent):
    """A waited-for child run ended (or could not start); its node succeeds or fails next."""

    type: Literal["child_run.finished"] = "child_run.finished"
    node_id: str
    attempt: int
    child_run_id: UUID
    status: ChildRunStatus


class ErrorWorkflowRequested(RunEvent):
    """The run failed or timed out and its workflow names an error workflow: a run of it was asked for."""

    type: Literal["error_workflow.requested"] = "error_workflow.requested"
    error_run_id: UUID
    workflow_id: UUID


class WebhookResponded(RunEvent):
    """A ``respond_to_webhook`` node set the answer of the webhook call that started the run; the
    gateway that holds the call (if it still waits) answers with it."""

    type: Literal["webhook.responded"] = "webhook.responded"
    node_id: str
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: JsonValue = None


class EventBuffered(RunEvent):
    """A signal or record event arrived before a ``wait_for_event`` node that accepts earlier events
    waited for it: the run keeps it until ``expires_at`` for the node to take."""

    type: Literal["event.buffered"] = "event.buffered"
    event_id: UUID
    source: Literal["signal", "record"]
    name: str = Field(description="The signal's name, or the record event's type")
    payload: JsonValue = None
    received_at: datetime
    expires_at: datetime


class RecordWaitRegistered(RunEvent):
    """A ``wait_for_event`` node that keeps earlier record events, whose record id the run's trigger
    already names, asks for the record's events from the run's start (``run_event_waits``)."""

    type: Literal["event.wait_registered"] = "event.wait_registered"
    node_id: str
    pipeline_id: str
    record_id: str


class EventTaken(RunEvent):
    """A node took a kept event: it is gone from the run's buffer."""

    type: Literal["event.taken"] = "event.taken"
    event_id: UUID
    node_id: str


class AgentTurnRequested(RunEvent):
    """An ``ai_agent`` node instance (``node_id``) asked its model for turn ``turn``; the command's
    ``node_id`` is ``<node_id>#m<turn>``, and its answer is stored under the request's hash, so a
    redelivered or replayed turn reuses it instead of paying again."""

    type: Literal["agent.turn_requested"] = "agent.turn_requested"
    node_id: str
    attempt: int
    turn: int = Field(ge=1)
    idempotency_key: str
    prompt: str | None = Field(
        default=None,
        description="A message to the model added before this turn: why its last answer was not taken",
    )


class AgentTurnCompleted(RunEvent):
    """The model answered turn ``turn``: ``message`` is its assistant message (``content`` and
    ``tool_calls`` in the OpenAI format)."""

    type: Literal["agent.turn_completed"] = "agent.turn_completed"
    node_id: str
    attempt: int
    turn: int = Field(ge=1)
    message: JsonObject
    model: str = ""
    usage: JsonObject = Field(default_factory=dict)
    cached: bool = False


class AgentToolCallScheduled(RunEvent):
    """A tool call of turn ``turn`` goes to what runs it (or first to the node's approver). ``step``
    (``<node_id>#t<turn>.<index>.<hash of the tool and its arguments>``) is the node id its command
    carries: with the run id and attempt 1, the call's idempotency key, the same after any restart and
    for a later attempt of the node that makes the same call at the same place."""

    type: Literal["agent.tool_call_scheduled"] = "agent.tool_call_scheduled"
    node_id: str
    attempt: int
    turn: int = Field(ge=1)
    call_id: str
    step: str
    tool: str
    arguments: JsonObject
    idempotency_key: str
    awaiting_approval: bool = False


class AgentToolCallFinished(RunEvent):
    """A tool call's result as the model will see it (``content``, cut to the node's limit):
    ``succeeded``, ``failed`` (the tool ran and failed), ``refused`` (not run: no such tool, bad
    arguments, a URL outside the tool's patterns, a limit reached) or ``rejected`` (the approver said no)."""

    type: Literal["agent.tool_call_finished"] = "agent.tool_call_finished"
    node_id: str
    attempt: int
    turn: int = Field(ge=1)
    call_id: str
    step: str
    tool: str
    outcome: Literal["succeeded", "failed", "refused", "rejected"]
    content: str


AnyRunEvent = Annotated[
    RunStarted
    | NodeScheduled
    | NodeSucceeded
    | NodeFailed
    | NodeSkipped
    | RunCompleted
    | RunFailed
    | RunCancelled
    | RunRetried
    | RunPaused
    | RunContinued
    | TimerScheduled
    | TimerFired
    | NodeRetryScheduled
    | RunTimedOut
    | ForEachItemScheduled
    | ForEachItemCompleted
    | ApprovalRequested
    | ApprovalDecided
    | RunThrottled
    | ChildRunRequested
    | ChildRunFinished
    | ErrorWorkflowRequested
    | WebhookResponded
    | EventBuffered
    | RecordWaitRegistered
    | EventTaken
    | AgentTurnRequested
    | AgentTurnCompleted
    | AgentToolCallScheduled
    | AgentToolCallFinished,
    Field(discriminator="type"),
]
RUN_EVENT = TypeAdapter(AnyRunEvent)


class RunStatus(StrEnum):
    """A run's status, as its events leave it (the ``runs`` projection's ``status``)."""

    NEW = "new"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    THROTTLED = "throttled"
    PAUSED = "paused"


def event_type(model: type[RunEvent]) -> str:
    """The ``type`` an event class carries."""
    return str(model.model_fields["type"].default)


RUN_ENDINGS: dict[type[RunEvent], RunStatus] = {
    RunCompleted: RunStatus.COMPLETED,
    RunFailed: RunStatus.FAILED,
    RunCancelled: RunStatus.CANCELLED,
    RunTimedOut: RunStatus.TIMED_OUT,
    RunThrottled: RunStatus.THROTTLED,
}
"""The events after which a run emits nothing more unless it is retried, and the status each leaves."""
RUN_ENDED_TYPES = frozenset(event_type(model) for model in RUN_ENDINGS)
RUN_ENDED_STATUSES = frozenset(RUN_ENDINGS.values())


APPROVAL_CLOSINGS: tuple[type[RunEvent], ...] = (RunCancelled, RunTimedOut, RunFailed, RunCompleted)
"""Run endings that close a run's pending approvals."""

AnyApprovalsEvent = Annotated[
    ApprovalRequested | ApprovalDecided | RunCompleted | RunFailed | RunCancelled | RunTimedOut,
    Field(discriminator="type"),
]
"""What ``runs.approvals`` carries (the approval service decodes it with this, so anything else is a
dead letter)."""
APPROVALS_EVENT = TypeAdapter(AnyApprovalsEvent)


def concerns_approvals(event: RunEvent, run_has_approvals: bool) -> bool:
    """Whether ``event`` goes to ``runs.approvals``: approval requests and decisions, and the ending of a
    run whose workflow has approval nodes (it closes what is still pending). The approval service reads
    that topic only, rather than every event of every run."""
    if isinstance(event, (ApprovalRequested, ApprovalDecided)):
        return True
    return run_has_approvals and isinstance(event, APPROVAL_CLOSINGS)
