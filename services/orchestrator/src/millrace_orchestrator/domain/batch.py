"""A polled batch of messages decided as a whole: each message in order against the state the earlier
ones left, a workflow's load carried forward from one start to the next. Pure, like ``decide``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.messages.run_commands import StartRun
from millrace_common.contracts.messages.run_events import RunEvent, RunThrottled
from millrace_common.contracts.outgoing import Outgoing

from millrace_orchestrator.domain.children import unstartable_child
from millrace_orchestrator.domain.decide import (
    DEFAULT_SUB_WORKFLOW_MAX_DEPTH,
    Message,
    WorkflowLoad,
    WorkflowStarts,
    decide,
    starts_by_workflow,
)
from millrace_orchestrator.domain.state import RunState, RunStatus

WorkflowKey = tuple[str, UUID]
"""A workflow of a tenant: (tenant id, workflow id)."""

THROTTLED_ON_ASSUMED_LOAD = "a run was throttled on an assumed load"


@dataclass(frozen=True)
class LoadedBatch:
    """What a batch is decided on: the state of each run its messages name, before the batch."""

    states: Mapping[UUID, RunState]
    loads: Mapping[WorkflowKey, WorkflowLoad] = field(default_factory=dict)
    """The load of each workflow a StartRun of the batch may start a run of (when read)."""
    handled_before: frozenset[UUID] = frozenset()
    """Ids of the batch's messages handled before: skipped."""
    unknown: Mapping[UUID, str] = field(default_factory=dict)
    """By message id, why a message names no run or workflow version there is: rejected."""
    assumed: bool = False
    """The states are remembered ones and the loads were not read (taken as none, and carried): the
    decision holds only if the log still ends where the states do and the workflows had room."""


@dataclass(frozen=True)
class Assumptions:
    """What a batch decided on remembered states and an unread load took for granted."""

    last_seqs: Mapping[UUID, int]
    """Each run's log ends at this seq (0: no log yet)."""
    starts: Mapping[WorkflowKey, WorkflowStarts]
    """Each workflow that gets new runs has room for them."""


@dataclass(frozen=True)
class BatchDecision:
    claims: tuple[UUID, ...] = ()
    """Ids of the messages this decision handles (the rejected ones too): handled once it is written."""
    events: tuple[RunEvent, ...] = ()
    commands: tuple[Outgoing, ...] = ()
    states: Mapping[UUID, RunState] = field(default_factory=dict, compare=False)
    """Each run's state once the events are in its log."""
    rejected: tuple[tuple[Message, str], ...] = ()
    """Messages set aside (a dead letter) with the reason, before the decision is written."""
    skipped: int = 0
    """Messages not decided again: handled before, or repeated within the batch."""
    assumptions: Assumptions | None = None
    """What the write must find for the decision to hold (None when it was decided on what was read)."""
    refused: str | None = None
    """Why the decision must not be written at all but made again on what is read."""


def decide_batch(
    messages: Sequence[Message],
    loaded: LoadedBatch,
    *,
    now: datetime,
    new_id: Callable[[], UUID],
    max_depth: int = DEFAULT_SUB_WORKFLOW_MAX_DEPTH,
) -> BatchDecision:
    """Decide ``messages`` in order, each on the state the earlier ones left and a workflow's load as
    the earlier ones left it. A run throttled on an assumed load refuses the decision: it is made
    again on the load read, which throttles from an earlier start on, with the reason's true count."""
    fresh = [
        m for m in {m.message_id: m for m in messages}.values() if m.message_id not in loaded.handled_before
    ]
    states = dict(loaded.states)
    loads = dict(loaded.loads)
    events: list[RunEvent] = []
    commands: list[Outgoing] = []
    rejected: list[tuple[Message, str]] = []
    for message in fresh:
        reason = loaded.unknown.get(message.message_id)
        if reason is not None:
            # A child that cannot start fails its waiting parent's node instead of waiting for nothing.
            report = (
                unstartable_child(message, reason, now=now, new_id=new_id)
                if isinstance(message, StartRun)
                else None
            )
            if report is None:
                rejected.append((message, reason))
            else:
                commands.append(report)
            continue
        state = states[message.run_id]
        key = (state.tenant_id or message.tenant_id, getattr(message, "workflow_id", state.workflow_id))
        starting = isinstance(message, StartRun) and state.status is RunStatus.NEW
        if starting and loaded.assumed:
            loads.setdefault(key, WorkflowLoad())
        decision = decide(
            state,
            message,
            now=now,
            new_id=new_id,
            load=loads.get(key) if starting else None,
            max_depth=max_depth,
        )
        if key in loads:
            loads[key] = loads[key].after(decision.events)
        states[message.run_id] = decision.state or state
        events.extend(decision.events)
        commands.extend(decision.commands)
    assumptions = refused = None
    if loaded.assumed:
        last_seqs = {run_id: state.last_seq for run_id, state in loaded.states.items()}
        assumptions = Assumptions(last_seqs, starts_by_workflow(events, states))
        if any(isinstance(e, RunThrottled) for e in events):
            refused = THROTTLED_ON_ASSUMED_LOAD
    return BatchDecision(
        claims=tuple(m.message_id for m in fresh),
        events=tuple(events),
        commands=tuple(commands),
        states=states,
        rejected=tuple(rejected),
        skipped=len(messages) - len(fresh),
        assumptions=assumptions,
        refused=refused,
    )
