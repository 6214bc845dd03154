"""Commands on ``runs.commands``, keyed by ``run_id``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.envelope import Envelope
from millrace_common.contracts.messages.node_commands import NodeError

ACTIVE_VERSION = 0
"""``StartRun.workflow_version`` for "the workflow's active version (else its newest) when the run
starts": a sub-workflow node without a pinned version, and an error workflow, are started so."""


class TriggerData(BaseModel):
    """What started a run, as templates see it under ``trigger``."""

    model_config = ConfigDict(frozen=True)

    kind: str
    source_event_id: UUID | None = None
    data: JsonObject = Field(default_factory=dict)
    started_by: str | None = Field(default=None, description="The user who started the run, for manual runs")
    causation_depth: int = Field(
        default=0,
        ge=0,
        description="The causation depth of the record event that started the run (0 otherwise)",
    )


class ParentRun(BaseModel):
    """The run and node that started a run as a sub-workflow, and the chain of workflows above it."""

    model_config = ConfigDict(frozen=True)

    run_id: UUID
    node_id: str = Field(description="The sub_workflow node's instance key in the parent run")
    attempt: int = Field(ge=1)
    wait: bool = Field(description="Whether the parent waits for this run's end (mode wait)")
    depth: int = Field(ge=1, description="1 for a child of a top-level run, 2 for a grandchild, ...")
    workflow_ids: tuple[UUID, ...] = Field(
        default=(), description="The workflows of the runs above this one, the top-level run's first"
    )


class StartRun(Envelope):
    type: Literal["run.start"] = "run.start"
    run_id: UUID
    workflow_id: UUID
    workflow_version: int = Field(
        ge=ACTIVE_VERSION, description="The version to run; 0: the active version (else the newest)"
    )
    trigger: TriggerData
    idempotency_key: str = Field(min_length=1, max_length=300)
    parent: ParentRun | None = Field(default=None, description="Set when a sub_workflow node starts the run")


class CancelRun(Envelope):
    type: Literal["run.cancel"] = "run.cancel"
    run_id: UUID
    reason: str = Field(default="cancelled by a user", max_length=500)
    requested_by: str | None = None


class RetryRun(Envelope):
    """Run a failed run again from its failed nodes, keeping every earlier node's output."""

    type: Literal["run.retry"] = "run.retry"
    run_id: UUID
    requested_by: str | None = None


class FireTimer(Envelope):
    """A durable timer of the run came due (sent by the orchestrator's timer loop to the run's owner)."""

    type: Literal["run.fire_timer"] = "run.fire_timer"
    run_id: UUID
    timer_id: UUID


class ResumeRun(Envelope):
    """A person decided an approval; the run continues along ``approved``, ``rejected`` or ``timeout``."""

    type: Literal["run.resume"] = "run.resume"
    run_id: UUID
    node_id: str = Field(description="The approval node's instance key")
    decision: Literal["approved", "rejected", "timeout"]
    decided_by: str | None = None
    note: str = Field(default="", max_length=5000)


class ContinueRun(Envelope):
    """A person answers a run paused on a node's error (``on_error: pause``): ``retry`` runs the node
    again, ``skip`` lets the run go on past it as if it had succeeded with an empty output."""

    type: Literal["run.continue"] = "run.continue"
    run_id: UUID
    action: Literal["retry", "skip"]
    requested_by: str | None = None


ChildRunStatus = Literal["completed", "failed", "cancelled", "timed_out", "throttled", "not_started"]


class ReportChildRun(Envelope):
    """A run started by a waiting ``sub_workflow`` node ended (or could not start): sent to the parent
    run (``run_id``), whose node takes the child's final output or fails with ``error``."""

    type: Literal["run.child_finished"] = "run.child_finished"
    run_id: UUID = Field(description="The parent run")
    node_id: str
    attempt: int = Field(ge=1)
    child_run_id: UUID
    status: ChildRunStatus
    output: JsonObject | None = None
    error: NodeError | None = None


class SignalRun(Envelope):
    """A signal sent to the run by name (``POST /api/v1/runs/{id}/signals/{name}``): it resumes the
    ``wait_for_event`` nodes waiting for that name, or is kept for one that accepts earlier events."""

    type: Literal["run.signal"] = "run.signal"
    run_id: UUID
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")
    payload: JsonValue = None
    sent_by: str | None = None


class DeliverRecordEvent(Envelope):
    """A record event a ``wait_for_event`` node of the run waits for (or keeps, when it accepts earlier
    events): the trigger service sends one per waiting node it finds in ``run_event_waits``."""

    type: Literal["run.record_event"] = "run.record_event"
    run_id: UUID
    node_id: str = Field(description="The waiting node's instance key")
    event_id: UUID = Field(description="The record event's message_id")
    event_type: str
    pipeline_id: str
    record_id: str
    data: JsonObject | None = None
    old_data: JsonObject | None = None
    occurred_at: datetime


AnyRunCommand = Annotated[
    StartRun
    | CancelRun
    | RetryRun
    | FireTimer
    | ResumeRun
    | ContinueRun
    | ReportChildRun
    | SignalRun
    | DeliverRecordEvent,
    Field(discriminator="type"),
]
RUN_COMMAND = TypeAdapter(AnyRunCommand)
