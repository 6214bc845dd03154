"""Sub-workflows and error workflows in the pure core: a world of runs that pass each other the
commands ``decide`` returns (as ``runs.commands`` would), with no I/O."""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.contracts.messages.run_commands import (
    CancelRun,
    FireTimer,
    ReportChildRun,
    StartRun,
    TriggerData,
)
from millrace_common.contracts.messages.run_events import (
    ChildRunFinished,
    ErrorWorkflowRequested,
    RunEvent,
    RunStarted,
)
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.batch import LoadedBatch, decide_batch
from millrace_orchestrator.domain.decide import Message, decide
from millrace_orchestrator.domain.projection import project
from millrace_orchestrator.domain.state import NodeStatus, RunState, RunStatus, evolve

pytestmark = pytest.mark.unit

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARENT = UUID(int=0xA)
CHILD = UUID(int=0xB)
HANDLER = UUID(int=0xC)


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def workflow(
    nodes: list[dict], edges: list[dict], *, trigger: dict | None = None, **settings
) -> WorkflowDefinition:
    start = node("start", "trigger", kind="manual", **(trigger or {}))
    return WorkflowDefinition.model_validate(
        {"nodes": [start, *nodes], "edges": edges, "settings": {"retry_count": 0, **settings}}
    )


def calling(target: UUID, *, mode: str = "wait", **data) -> WorkflowDefinition:
    """A workflow whose one node calls ``target`` with ``{"n": trigger.n}``, then ends with its output."""
    call = node(
        "call", "sub_workflow", workflow_id=str(target), mode=mode, input={"n": "{{ trigger.n }}"}, **data
    )
    done = node("done", "end", output={"got": "{{ nodes.call.output }}"})
    return workflow([call, done], [edge("start", "call"), edge("call", "done")])


DOUBLING = workflow(
    [node("done", "end", output={"twice": "{{ trigger.n * 2 }}"})],
    [edge("start", "done")],
    trigger={"input_schema": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}},
)
FAILING = workflow(
    [node("broken", "set", variables={"x": "{{ trigger.missing.deeper }}"})], [edge("start", "broken")]
)
WAITING = workflow([node("pause", "wait_delay", duration_seconds=3600)], [edge("start", "pause")])


@dataclass
class World:
    """Runs of several workflows; every command a decision returns is delivered in order."""

    workflows: dict[UUID, WorkflowDefinition]
    max_depth: int = 8
    now: datetime = START
    runs: dict[UUID, RunState] = field(default_factory=dict)
    log: dict[UUID, list[RunEvent]] = field(default_factory=dict)
    queue: deque[Message] = field(default_factory=deque)
    delivered: list[Message] = field(default_factory=list)
    hold: bool = False
    """Whether runs the core starts (children, error workflows) are left in the queue, to be looked at."""

    def __post_init__(self) -> None:
        counter = itertools.count(1)
        self.new_id = lambda: UUID(int=(1 << 64) + next(counter))

    def start(self, workflow_id: UUID, data: dict | None = None) -> UUID:
        run_id = uuid4()
        self.queue.append(
            StartRun(
                tenant_id="t1",
                run_id=run_id,
                workflow_id=workflow_id,
                workflow_version=1,
                trigger=TriggerData(kind="manual", data=data or {}),
                idempotency_key=str(run_id),
            )
        )
        self.settle()
        return run_id

    def send(self, message: Message) -> None:
        self.queue.append(message)
        self.settle()

    def settle(self) -> None:
        held: list[Message] = []
        while self.queue:
            message = self.queue.popleft()
            if self.hold and isinstance(message, StartRun) and message.trigger.kind != "manual":
                held.append(message)
                continue
            self.delivered.append(message)
            state = self.runs.get(message.run_id)
            if state is None:
                if not isinstance(message, StartRun):
                    continue
                state = RunState(message.run_id, self.workflows[message.workflow_id], workflow_version=1)
            decision = decide(state, message, now=self.now, new_id=self.new_id, max_depth=self.max_depth)
            self.log.setdefault(message.run_id, []).extend(decision.events)
            folded = state
            for event in decision.events:
                folded = evolve(folded, event)
            assert folded == (decision.state or state)
            self.runs[message.run_id] = folded
            self.queue.extend(c.message for c in decision.commands)  # type: ignore[misc]
        self.queue.extend(held)

    def fire_timers(self, run_id: UUID) -> None:
        for timer in list(self.runs[run_id].timers.values()):
            if timer.purpose != "run_timeout":
                self.now = max(self.now, timer.fire_at)
                self.send(FireTimer(tenant_id="t1", run_id=run_id, timer_id=timer.timer_id))

    def children(self, run_id: UUID) -> list[RunState]:
        return [s for s in self.runs.values() if s.parent is not None and s.parent.run_id == run_id]


def test_a_parent_waits_for_its_child_and_takes_its_final_output():
    world = World({PARENT: calling(CHILD), CHILD: DOUBLING})
    parent = world.start(PARENT, {"n": 21})
    [child] = world.children(parent)
    assert child.status is RunStatus.COMPLETED
    assert (
        child.trigger is not None and child.trigger.kind == "sub_workflow" and child.trigger.data == {"n": 21}
    )
    assert child.parent is not None and child.parent.node_id == "call" and child.parent.depth == 1
    assert world.runs[parent].status is RunStatus.COMPLETED
    assert world.runs[parent].node("call").output == {"twice": 42}
    assert world.runs[parent].final_output == {"got": {"twice": 42}}


def test_a_child_input_that_does_not_match_its_schema_fails_the_node_without_retrying():
    world = World({PARENT: calling(CHILD, retry={"max_attempts": 3, "retry_on": ["*"]}), CHILD: DOUBLING})
    parent = world.start(PARENT, {"n": "not a number"})
    [child] = world.children(parent)
    assert child.status is RunStatus.FAILED
    error = world.runs[parent].node("call").error
    assert error is not None and error.type == "sub_workflow_input" and "/n" in error.message
    assert world.runs[parent].status is RunStatus.FAILED


def test_a_failed_child_is_the_nodes_error_so_retries_and_the_error_edge_apply():
    call = node(
        "call",
        "sub_workflow",
        workflow_id=str(CHILD),
        retry={"max_attempts": 2, "backoff_seconds": 1, "retry_on": ["sub_workflow_failed"]},
        on_error="error_edge",
    )
    handled = node("handled", "end", output={"error": "{{ nodes.call.error.type }}"})
    world = World(
        {
            PARENT: workflow([call, handled], [edge("start", "call"), edge("call", "handled", "error")]),
            CHILD: FAILING,
        }
    )
    parent = world.start(PARENT)
    assert world.runs[parent].node("call").status is NodeStatus.RETRYING
    world.fire_timers(parent)
    children = world.children(parent)
    assert [c.status for c in children] == [RunStatus.FAILED, RunStatus.FAILED]
    assert {c.parent.attempt for c in children if c.parent} == {1, 2}
    assert world.runs[parent].node("call").status is NodeStatus.FAILED
    assert world.runs[parent].status is RunStatus.COMPLETED
    assert world.runs[parent].final_output == {"error": "sub_workflow_failed"}


def test_fire_and_forget_succeeds_at_once_with_the_child_run_id_and_the_child_reports_nothing():
    world = World({PARENT: calling(CHILD, mode="fire_and_forget"), CHILD: WAITING})
    parent = world.start(PARENT, {"n": 1})
    [child] = world.children(parent)
    assert world.runs[parent].status is RunStatus.COMPLETED
    assert world.runs[parent].node("call").output == {"run_id": str(child.run_id)}
    world.fire_timers(child.run_id)
    assert world.runs[child.run_id].status is RunStatus.COMPLETED
    assert not [m for m in world.delivered if isinstance(m, ReportChildRun)]


def test_cancelling_the_parent_cancels_the_child_it_waits_for():
    world = World({PARENT: calling(CHILD), CHILD: WAITING})
    parent = world.start(PARENT, {"n": 1})
    [child] = world.children(parent)
    assert child.status is RunStatus.RUNNING
    world.send(CancelRun(tenant_id="t1", run_id=parent))
    assert world.runs[parent].status is RunStatus.CANCELLED
    assert world.runs[child.run_id].status is RunStatus.CANCELLED
    # The cancelled child's report reaches a parent that no longer waits: nothing changes.
    assert not [e for e in world.log[parent] if isinstance(e, ChildRunFinished)]


def test_a_workflow_that_calls_itself_stops_at_the_depth_limit_with_a_cycle_error():
    world = World({PARENT: calling(PARENT)}, max_depth=3)
    top = world.start(PARENT, {"n": 1})
    assert len(world.runs) == 4
    deepest = max(world.runs.values(), key=lambda s: s.parent.depth if s.parent else 0)
    assert deepest.parent is not None and deepest.parent.depth == 3
    error = deepest.node("call").error
    assert error is not None and error.type == "sub_workflow_cycle"
    assert all(s.status is RunStatus.FAILED for s in world.runs.values())
    top_error = world.runs[top].node("call").error
    assert top_error is not None and top_error.type == "sub_workflow_failed"


def test_a_chain_of_other_workflows_past_the_limit_fails_with_the_depth_error():
    third = UUID(int=0xD)
    world = World({PARENT: calling(CHILD), CHILD: calling(third), third: DOUBLING}, max_depth=1)
    world.start(PARENT, {"n": 1})
    [middle] = [s for s in world.runs.values() if s.workflow_id == CHILD]
    error = middle.node("call").error
    assert error is not None and error.type == "sub_workflow_depth_exceeded"


def test_a_child_that_cannot_start_fails_its_parents_node():
    world = World({PARENT: calling(CHILD), CHILD: DOUBLING})
    world.hold = True
    parent = world.start(PARENT, {"n": 1})
    [start] = [m for m in world.queue if isinstance(m, StartRun) and m.parent is not None]
    world.queue.clear()
    decision = decide_batch(
        [start],
        LoadedBatch(states={}, unknown={start.message_id: "workflow x does not exist"}),
        now=START,
        new_id=uuid4,
    )
    assert not decision.rejected
    [report] = [c.message for c in decision.commands]
    assert isinstance(report, ReportChildRun) and report.status == "not_started"
    world.hold = False
    world.send(report)
    error = world.runs[parent].node("call").error
    assert error is not None and error.type == "sub_workflow_not_found"


def test_a_failed_run_starts_its_error_workflow_with_what_failed():
    failing = workflow(
        [node("broken", "set", variables={"x": "{{ trigger.missing.deeper }}"})],
        [edge("start", "broken")],
        error_workflow_id=str(HANDLER),
    )
    world = World({PARENT: failing, HANDLER: workflow([], [])})
    world.hold = True
    run_id = world.start(PARENT, {"n": 5})
    [requested] = [e for e in world.log[run_id] if isinstance(e, ErrorWorkflowRequested)]
    [start] = [m for m in world.queue if isinstance(m, StartRun) and m.run_id == requested.error_run_id]
    assert start.workflow_id == HANDLER and start.workflow_version == 0
    assert start.trigger.kind == "error_workflow"
    data = start.trigger.data
    assert data["run_id"] == str(run_id) and data["workflow_id"] == str(PARENT) and data["version"] == 1
    assert data["failed_node_id"] == "broken" and data["status"] == "failed"
    assert data["error"]["type"] == "template"  # type: ignore[index]
    assert data["trigger"]["data"] == {"n": 5}  # type: ignore[index]


def test_an_error_workflows_own_failure_starts_no_error_workflow():
    failing = workflow(
        [node("broken", "set", variables={"x": "{{ trigger.missing.deeper }}"})],
        [edge("start", "broken")],
        error_workflow_id=str(HANDLER),
    )
    world = World({PARENT: failing, HANDLER: failing})
    world.start(PARENT)
    handler_runs = [s for s in world.runs.values() if s.workflow_id == HANDLER]
    assert len(handler_runs) == 1 and handler_runs[0].status is RunStatus.FAILED
    assert not [e for e in world.log[handler_runs[0].run_id] if isinstance(e, ErrorWorkflowRequested)]


def test_a_completed_run_and_a_cancelled_one_start_no_error_workflow():
    world = World(
        {
            PARENT: workflow(
                [node("pause", "wait_delay", duration_seconds=5)],
                [edge("start", "pause")],
                error_workflow_id=str(HANDLER),
            ),
            HANDLER: DOUBLING,
        }
    )
    done = world.start(PARENT)
    world.fire_timers(done)
    cancelled = world.start(PARENT)
    world.send(CancelRun(tenant_id="t1", run_id=cancelled))
    assert world.runs[done].status is RunStatus.COMPLETED
    assert not [s for s in world.runs.values() if s.workflow_id == HANDLER]


def test_a_child_run_is_projected_with_its_parent():
    world = World({PARENT: calling(CHILD), CHILD: DOUBLING})
    parent = world.start(PARENT, {"n": 2})
    [child] = world.children(parent)
    [started] = [e for e in world.log[child.run_id] if isinstance(e, RunStarted)]
    row = project([started]).new_runs[child.run_id]
    assert row["parent_run_id"] == parent and row["parent_node_id"] == "call"


STATUSES = st.sampled_from(["completed", "failed", "cancelled", "timed_out", "throttled", "not_started"])


@settings(max_examples=60, deadline=None)
@given(
    reports=st.lists(
        st.tuples(
            st.booleans(), st.booleans(), STATUSES, st.dictionaries(st.text(max_size=3), st.integers())
        ),
        min_size=1,
        max_size=6,
    )
)
def test_the_waiting_node_takes_exactly_the_first_report_of_its_own_child(reports):
    """Whatever reports arrive (of other child runs, other attempts, repeated), the node takes the
    first of its current child and attempt, once; the rest change nothing."""
    world = World({PARENT: calling(CHILD), CHILD: WAITING})
    parent = world.start(PARENT, {"n": 1})
    [child] = world.children(parent)
    first = None
    for own_child, own_attempt, status, output in reports:
        report = ReportChildRun(
            tenant_id="t1",
            run_id=parent,
            node_id="call",
            attempt=1 if own_attempt else 2,
            child_run_id=child.run_id if own_child else uuid4(),
            status=status,
            output=output,
        )
        if first is None and own_child and own_attempt:
            first = report
        world.send(report)
    finished = [e for e in world.log[parent] if isinstance(e, ChildRunFinished)]
    call = world.runs[parent].node("call")
    if first is None:
        assert not finished and call.status is NodeStatus.SCHEDULED
        return
    assert len(finished) == 1 and finished[0].status == first.status
    if first.status == "completed":
        assert call.status is NodeStatus.SUCCEEDED and call.output == first.output
    else:
        assert call.status is NodeStatus.FAILED
        assert call.error is not None and call.error.type == "sub_workflow_failed"


def test_the_run_timeout_of_a_waiting_parent_cancels_its_child():
    world = World({PARENT: calling(CHILD), CHILD: WAITING})
    parent = world.start(PARENT, {"n": 1})
    [child] = world.children(parent)
    [timeout] = [t for t in world.runs[parent].timers.values() if t.purpose == "run_timeout"]
    world.now = START + timedelta(hours=2)
    world.send(FireTimer(tenant_id="t1", run_id=parent, timer_id=timeout.timer_id))
    assert world.runs[parent].status is RunStatus.TIMED_OUT
    assert world.runs[child.run_id].status is RunStatus.CANCELLED
