"""Drives the pure core the way the shell does, without I/O: node commands are answered by a
function, due timers are fired, and the folded log is checked against the state decide returned."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from millrace_common.contracts.messages.node_commands import (
    ExecuteNode,
    NodeError,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.messages.run_commands import FireTimer, StartRun, TriggerData
from millrace_common.contracts.messages.run_events import RunEvent, TimerScheduled
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.decide import Message, decide
from millrace_orchestrator.domain.state import RunState, evolve

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
Runner = Callable[[ExecuteNode], NodeSucceededResult | NodeFailedResult]


def first_pending(pending: list[ExecuteNode]) -> int:
    return 0


def succeed_with(output_for: Callable[[ExecuteNode], dict] = lambda c: {"ok": True}) -> Runner:
    def run(command: ExecuteNode) -> NodeSucceededResult:
        return NodeSucceededResult(
            tenant_id=command.tenant_id,
            run_id=command.run_id,
            node_id=command.node_id,
            attempt=command.attempt,
            output=output_for(command),
            duration_ms=1.0,
        )

    return run


def fail_with(error: NodeError) -> Runner:
    def run(command: ExecuteNode) -> NodeFailedResult:
        return NodeFailedResult(
            tenant_id=command.tenant_id,
            run_id=command.run_id,
            node_id=command.node_id,
            attempt=command.attempt,
            error=error,
            duration_ms=1.0,
        )

    return run


@dataclass
class Simulation:
    definition: WorkflowDefinition
    runner: Runner = field(default_factory=succeed_with)
    # Which of the pending commands the runners answer next (its position): out-of-order answers
    # are how items of a for_each overtake each other.
    choose: Callable[[list[ExecuteNode]], int] = first_pending
    now: datetime = START
    run_id: UUID = field(default_factory=uuid4)
    log: list[RunEvent] = field(default_factory=list)
    commands: list[ExecuteNode] = field(default_factory=list)

    def __post_init__(self) -> None:
        counter = itertools.count(1)
        self.new_id = lambda: UUID(int=next(counter))
        self.state = RunState(run_id=self.run_id, definition=self.definition)

    def send(self, message: Message) -> None:
        decision = decide(self.state, message, now=self.now, new_id=self.new_id)
        self.log.extend(decision.events)
        folded = self.state
        for event in decision.events:
            folded = evolve(folded, event)
        self.state = folded
        assert decision.state is None or decision.state == folded
        for outgoing in decision.commands:
            if isinstance(outgoing.message, ExecuteNode):
                self.commands.append(outgoing.message)

    def start(self, data: dict | None = None, kind: str = "manual") -> Simulation:
        self.send(
            StartRun(
                tenant_id="acme",
                run_id=self.run_id,
                workflow_id=uuid4(),
                workflow_version=1,
                trigger=TriggerData(kind=kind, data=data or {}),
                idempotency_key=f"sim:{self.run_id}",
            )
        )
        return self

    def run_to_end(self, max_steps: int = 10_000) -> Simulation:
        """Answer commands and fire timers (advancing the clock) until nothing is left to do."""
        for _ in range(max_steps):
            if self.commands:
                self.send(self.runner(self.commands.pop(self.choose(self.commands))))
                continue
            due = self.next_timer()
            if due is None or self.state.finished:
                return self
            self.now = max(self.now, due.fire_at)
            self.send(FireTimer(tenant_id="acme", run_id=self.run_id, timer_id=due.timer_id))
        raise AssertionError("the run did not settle")

    def next_timer(self) -> TimerScheduled | None:
        # Ties go by node: timer ids are handed out in the order the core emits, which can vary.
        pending = sorted(self.state.timers.values(), key=lambda t: (t.fire_at, t.node_id or "", t.purpose))
        # The run's own timeout fires only when nothing else is left.
        work = [t for t in pending if t.purpose != "run_timeout"]
        return (work or pending or [None])[0]

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def types(self) -> list[str]:
        return [e.type for e in self.log if not e.type.startswith("timer.")]

    def node_events(self, node_id: str) -> list[str]:
        return [
            e.type
            for e in self.log
            if getattr(e, "node_id", None) == node_id and not e.type.startswith("timer.")
        ]
