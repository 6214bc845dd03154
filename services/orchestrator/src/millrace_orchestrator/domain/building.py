"""A decision and the builder that makes it: events are emitted one by one, each folded into the
run's state so later steps of the same decision see it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.node_commands import (
    ExecuteNode,
    NodeFailedResult,
    NodeSucceededResult,
)
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
    ForEachItemScheduled,
    RunContinued,
    RunEvent,
    RunRetried,
    TimerPurpose,
    TimerScheduled,
)
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.language.workflow import Node, node_types

from millrace_orchestrator.domain.state import RunState, evolve, split_key

Message = (
    StartRun
    | CancelRun
    | RetryRun
    | FireTimer
    | ResumeRun
    | ContinueRun
    | SignalRun
    | DeliverRecordEvent
    | NodeSucceededResult
    | NodeFailedResult
    | ReportChildRun
)

DEFAULT_SUB_WORKFLOW_MAX_DEPTH = 8
"""How many sub-workflow runs may nest below a top-level run (MILLRACE_SUB_WORKFLOW_MAX_DEPTH)."""


@dataclass(frozen=True)
class Decision:
    events: tuple[RunEvent, ...] = ()
    commands: tuple[Outgoing, ...] = ()
    state: RunState | None = field(default=None, compare=False)


class _Builder:
    """Accumulates events, folding each into the state so later decisions see earlier ones."""

    def __init__(
        self,
        state: RunState,
        message: Message,
        now: datetime,
        new_id: Callable[[], UUID],
        max_depth: int = DEFAULT_SUB_WORKFLOW_MAX_DEPTH,
    ) -> None:
        self.state = state
        self.max_depth = max_depth
        # Whether this decision already told the run's parent that the run ended.
        self.reported = False
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
        if event_type is RunRetried or event_type is RunContinued:
            # A retried or continued run looks at every item again: a run that ended or paused mid-pass
            # left some unseen (items that finished while it was paused were not advanced).
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

    def execute(
        self, node_type: str, node_id: str, attempt: int, node_input: JsonObject, timeout_seconds: float
    ) -> None:
        """Send ``node_type``'s runner the command to run ``node_id`` (a node instance, or a step of an
        agent's loop) with ``node_input``."""
        state = self.state
        if state.workflow_id is None:
            raise ValueError("a node is started only in a started run")
        command = ExecuteNode(
            message_id=self.new_id(),
            tenant_id=state.tenant_id,
            occurred_at=self.now,
            correlation_id=state.run_id,
            causation_id=self.message.message_id,
            run_id=state.run_id,
            workflow_id=state.workflow_id,
            node_id=node_id,
            node_type=node_type,
            attempt=attempt,
            input=node_input,
            timeout_seconds=timeout_seconds,
            causation_depth=state.trigger.causation_depth if state.trigger else 0,
        )
        topic = node_types().runner_topics()[node_type]
        self.commands.append(Outgoing(topic=topic, key=str(state.run_id), message=command))

    def decision(self) -> Decision:
        return Decision(tuple(self.events), tuple(self.commands), self.state)


def _instance(state: RunState, key: str) -> tuple[Node, str]:
    node_id, scope = split_key(key)
    return state.definition.node(node_id), scope
