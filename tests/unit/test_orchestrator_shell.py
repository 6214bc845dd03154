"""The orchestrator's shell (``service_layer.runs``) on an in-memory run log: what is committed, what is
skipped, what a conflict costs, and the load carried through a batch. ``FakeRunLog`` keeps the
PostgreSQL adapter's promises that the shell relies on: a write is all or nothing, it fails on a
message claimed before or a log that moved on, and a batch decided on remembered states is checked
against the log and the workflows' load."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from millrace_common.contracts.messages.node_commands import NodeSucceededResult
from millrace_common.contracts.messages.run_commands import CancelRun, FireTimer, StartRun, TriggerData
from millrace_common.contracts.messages.run_events import RunEvent, RunStarted, RunThrottled
from millrace_common.contracts.topics import NODES_READY_HTTP, RUNS_EVENTS
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform.outbox import Record
from millrace_orchestrator.domain.batch import BatchDecision, LoadedBatch
from millrace_orchestrator.domain.decide import Message, WorkflowLoad
from millrace_orchestrator.domain.state import RunState, RunStatus, evolve
from millrace_orchestrator.service_layer.ports import Committed, WriteConflict
from millrace_orchestrator.service_layer.runs import RunMessages

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TENANT = "acme"


def definition(*nodes: dict, **settings: object) -> WorkflowDefinition:
    everything = [{"id": "start", "type": "trigger", "data": {"name": "start", "kind": "manual"}}, *nodes]
    edges = [
        {"id": f"{a['id']}-{b['id']}", "source": a["id"], "target": b["id"]}
        for a, b in itertools.pairwise(everything)
    ]
    return WorkflowDefinition.model_validate({"nodes": everything, "edges": edges, "settings": settings})


CALL = {"id": "call", "type": "http_request", "data": {"name": "call", "url": "http://example.test/x"}}
WAIT = {"id": "wait", "type": "wait_delay", "data": {"name": "wait", "duration_seconds": 600}}
DONE = {"id": "done", "type": "end", "data": {"name": "done"}}


# -- the run log in memory --------------------------------------------------------------------------


@dataclass
class Tables:
    """What the database holds, shared by every instance's run log."""

    definitions: dict[tuple[UUID, int], WorkflowDefinition] = field(default_factory=dict)
    log: dict[UUID, list[RunEvent]] = field(default_factory=dict)
    claimed: list[UUID] = field(default_factory=list)
    outbox: list[Record] = field(default_factory=list)
    after_next_read: Callable[[], Awaitable[None]] | None = None
    """Another writer that gets in just after the next read (of any instance), once."""

    def workflow(self, *nodes: dict, **settings: object) -> tuple[UUID, int]:
        key = (uuid4(), 1)
        self.definitions[key] = definition(*nodes, **settings)
        return key

    def state(self, run_id: UUID, definition: WorkflowDefinition, after: RunState | None = None) -> RunState:
        state = after or RunState(run_id, definition)
        for event in self.log.get(run_id, [])[state.last_seq :]:
            state = evolve(state, event)
        return state

    def load(self, tenant_id: str, workflow_id: UUID) -> WorkflowLoad:
        started = running = 0
        for events in self.log.values():
            first = events[0]
            if first.tenant_id == tenant_id and getattr(first, "workflow_id", None) == workflow_id:
                started += isinstance(first, RunStarted)
                running += self.state(first.run_id, self.definitions[ref(first)]).status is RunStatus.RUNNING
        return WorkflowLoad(started_last_hour=started, running=running)

    def types(self, run_id: UUID) -> list[str]:
        return [e.type for e in self.log.get(run_id, []) if not e.type.startswith("timer.")]


def ref(event: RunEvent) -> tuple[UUID, int]:
    assert isinstance(event, (RunStarted, RunThrottled))
    return event.workflow_id, event.workflow_version


class FakeRunLog:
    """The ``RunLog`` port over :class:`Tables`, with a cache of remembered states of its own (one
    orchestrator instance) and the definitions it has loaded."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.remembered: dict[UUID, RunState] = {}
        self.loaded: set[tuple[UUID, int]] = set()
        self.writes = 0
        """Commits asked for, written or not."""

    async def load(self, messages: Sequence[Message], *, now: datetime, read: bool = False) -> LoadedBatch:
        todo = list({m.message_id: m for m in messages}.values())
        if not read:
            known = {m.run_id: self._known(m) for m in todo}
            if None not in known.values():
                return LoadedBatch(known, assumed=True)  # type: ignore[arg-type]
        states: dict[UUID, RunState] = {}
        unknown: dict[UUID, str] = {}
        loads: dict[tuple[str, UUID], WorkflowLoad] = {}
        handled = frozenset(m.message_id for m in todo if m.message_id in self.tables.claimed)
        for message in todo:
            if message.message_id in handled or message.run_id in states:
                continue
            log = self.tables.log.get(message.run_id)
            key: tuple[UUID, int] | None = None
            if log:
                key = ref(log[0])
            elif isinstance(message, StartRun):
                key = (message.workflow_id, message.workflow_version)
            if key is None or key not in self.tables.definitions:
                unknown[message.message_id] = f"no run {message.run_id}"
                continue
            self.loaded.add(key)
            states[message.run_id] = self.tables.state(message.run_id, self.tables.definitions[key])
            if isinstance(message, StartRun):
                loads[(message.tenant_id, message.workflow_id)] = self.tables.load(
                    message.tenant_id, message.workflow_id
                )
        if self.tables.after_next_read is not None:
            other, self.tables.after_next_read = self.tables.after_next_read, None
            await other()
        return LoadedBatch(states, loads, handled, unknown)

    def _known(self, message: Message) -> RunState | None:
        remembered = self.remembered.get(message.run_id)
        if remembered is not None or not isinstance(message, StartRun):
            return remembered
        key = (message.workflow_id, message.workflow_version)
        return RunState(message.run_id, self.tables.definitions[key]) if key in self.loaded else None

    async def commit(self, decision: BatchDecision, *, now: datetime) -> Committed:
        self.writes += 1
        tables = self.tables
        if set(decision.claims) & set(tables.claimed):
            raise WriteConflict("a message was claimed before")
        seqs = {run_id: len(events) for run_id, events in tables.log.items()}
        for event in decision.events:
            if event.seq != seqs.get(event.run_id, 0) + 1:
                raise WriteConflict(f"run {event.run_id} has a row with seq {event.seq}")
            seqs[event.run_id] = event.seq
        if decision.assumptions is not None:
            for run_id, seq in decision.assumptions.last_seqs.items():
                if len(tables.log.get(run_id, [])) != seq:
                    raise WriteConflict("the batch was decided on a run state that has changed")
            for (tenant, workflow), starts in decision.assumptions.starts.items():
                load = tables.load(tenant, workflow)
                room = starts.concurrent is None or load.running + starts.peak <= starts.concurrent
                if load.started_last_hour + starts.starts > starts.per_hour or not room:
                    raise WriteConflict("the batch was decided on a workflow load that has changed")
        for event in decision.events:
            tables.log.setdefault(event.run_id, []).append(event)
        tables.claimed.extend(decision.claims)
        messages: list[Record] = [(c.topic.name, c.key.encode(), c.payload()) for c in decision.commands]
        messages += [(RUNS_EVENTS.name, str(e.run_id).encode(), e.to_bytes()) for e in decision.events]
        ids = list(range(len(tables.outbox) + 1, len(tables.outbox) + len(messages) + 1))
        tables.outbox.extend(messages)
        for state in decision.states.values():
            if state.finished:
                self.remembered.pop(state.run_id, None)
            else:
                self.remembered[state.run_id] = state
        return Committed(ids, messages)


@dataclass
class Relay:
    handed_over: list[tuple[list[int], list[Record]]] = field(default_factory=list)

    async def hand_over(self, ids: Sequence[int], messages: Sequence[Record]) -> None:
        self.handed_over.append((list(ids), list(messages)))


class Instance:
    """One orchestrator: the shell on a run log of its own over the shared tables, recording the path
    each batch took and the messages it rejected."""

    def __init__(self, tables: Tables) -> None:
        counter = itertools.count(1)
        self.run_log = FakeRunLog(tables)
        self.relay = Relay()
        self.paths: list[str] = []
        self.rejected: list[tuple[Message, str]] = []
        self.observed: list[RunEvent] = []
        self.runs = RunMessages(
            self.run_log,
            self.relay,
            clock=lambda: NOW,
            new_id=lambda: UUID(int=next(counter)),
            observe=self.observed.extend,
            count_batch=self.paths.append,
        )

    async def handle(self, *messages: Message) -> list[str]:
        async def reject(message: Message, reason: str) -> None:
            self.rejected.append((message, reason))

        before = len(self.paths)
        await self.runs.handle(list(messages), reject)
        return self.paths[before:]


def start(workflow: tuple[UUID, int]) -> StartRun:
    run_id = uuid4()
    return StartRun(
        tenant_id=TENANT,
        run_id=run_id,
        workflow_id=workflow[0],
        workflow_version=workflow[1],
        trigger=TriggerData(kind="manual"),
        idempotency_key=str(run_id),
    )


def succeeded(run: StartRun, node_id: str = "call", attempt: int = 1) -> NodeSucceededResult:
    return NodeSucceededResult(
        tenant_id=TENANT, run_id=run.run_id, node_id=node_id, attempt=attempt, output={}, duration_ms=1
    )


def cancel(run: StartRun) -> CancelRun:
    return CancelRun(tenant_id=TENANT, run_id=run.run_id, reason="enough")


def reason(tables: Tables, run: StartRun) -> str:
    (event,) = tables.log[run.run_id]
    assert isinstance(event, RunThrottled)
    return event.reason


# -- the shell --------------------------------------------------------------------------------------


async def test_a_batch_is_committed_with_its_events_a_claim_per_message_and_its_rows_handed_to_the_relay():
    tables = Tables()
    workflow = tables.workflow(CALL, DONE)
    orchestrator = Instance(tables)
    first, second = start(workflow), start(workflow)

    assert await orchestrator.handle(first, second) == ["read"], "the definition is not loaded yet"

    assert tables.claimed == [first.message_id, second.message_id]
    for run in (first, second):
        assert tables.types(run.run_id) == ["run.started", "node.succeeded", "node.scheduled"]
    (handed,) = orchestrator.relay.handed_over
    assert handed == (list(range(1, len(tables.outbox) + 1)), tables.outbox)
    commands = [topic for topic, _, _ in tables.outbox if topic != RUNS_EVENTS.name]
    assert commands == [NODES_READY_HTTP.name, NODES_READY_HTTP.name]
    assert orchestrator.observed == [e for run in (first, second) for e in tables.log[run.run_id]]


async def test_a_batch_of_remembered_runs_is_committed_without_a_read():
    tables = Tables()
    workflow = tables.workflow(CALL, DONE)
    orchestrator = Instance(tables)
    first, second = start(workflow), start(workflow)
    await orchestrator.handle(first)

    assert await orchestrator.handle(succeeded(first), second) == ["cached"]
    assert tables.types(first.run_id)[-1] == "run.completed"
    assert tables.types(second.run_id)[0] == "run.started"


async def test_a_message_handled_before_is_skipped_and_the_rest_of_its_batch_is_written():
    tables = Tables()
    workflow = tables.workflow(WAIT, DONE)
    orchestrator = Instance(tables)
    again, fresh = start(workflow), start(workflow)
    await orchestrator.handle(again)

    # The claim of the message handled before fails the write; read, it is skipped.
    assert await orchestrator.handle(again, fresh, fresh) == ["cached_refused", "read"]
    assert tables.types(again.run_id).count("run.started") == 1
    assert tables.types(fresh.run_id) == ["run.started", "node.succeeded", "node.scheduled"]
    assert sorted(tables.claimed) == sorted([again.message_id, fresh.message_id])
    assert orchestrator.rejected == []


async def test_a_run_moved_on_elsewhere_is_read_again_and_a_conflict_after_the_read_goes_message_by_message():
    tables = Tables()
    workflow = tables.workflow(CALL, DONE)
    first, second = Instance(tables), Instance(tables)
    moved, contested = start(workflow), start(workflow)
    await first.handle(moved, contested)
    # The other instance completes ``moved``: the first one remembers it still running.
    assert await second.handle(succeeded(moved)) == ["read"]

    async def other_writer() -> None:
        # Between the first instance's read and its write, the other one cancels ``contested``.
        assert await second.handle(cancel(contested)) == ["read"]

    tables.after_next_read = other_writer
    late_cancel, late_result = cancel(moved), succeeded(contested)
    assert await first.handle(late_cancel, late_result) == ["cached_refused", "read", "read"]

    assert tables.types(moved.run_id)[-1] == "run.completed", "a completed run is not cancelled"
    assert tables.types(contested.run_id)[-1] == "run.cancelled", "a late result changes nothing"
    for run in (moved, contested):
        assert [e.seq for e in tables.log[run.run_id]] == list(range(1, len(tables.log[run.run_id]) + 1))
    assert tables.claimed.count(late_cancel.message_id) == tables.claimed.count(late_result.message_id) == 1
    handed = [i for ids, _ in first.relay.handed_over for i in ids]
    assert len(handed) == len(set(handed)), "nothing of the refused writes reached the relay"


async def test_starts_are_throttled_on_the_load_carried_from_one_start_to_the_next():
    tables = Tables()
    workflow = tables.workflow(WAIT, DONE, max_concurrent_runs=2)
    orchestrator = Instance(tables)
    runs = [start(workflow) for _ in range(3)]

    assert await orchestrator.handle(*runs) == ["read"]

    assert [tables.types(r.run_id)[0] for r in runs] == ["run.started", "run.started", "run.throttled"]
    assert reason(tables, runs[2]) == "max_concurrent_runs reached: 2 runs are running"


async def test_a_run_throttled_on_an_assumed_load_sends_the_batch_to_be_read_and_decided_again():
    tables = Tables()
    workflow = tables.workflow(WAIT, DONE, max_concurrent_runs=2)
    orchestrator = Instance(tables)
    early, *batch = (start(workflow) for _ in range(4))
    await orchestrator.handle(early)

    # On the assumed load (none) the third start of the batch is throttled: no write is tried, and
    # on the load read the second one is already beyond the limit.
    writes = orchestrator.run_log.writes
    assert await orchestrator.handle(*batch) == ["cached_refused", "read"]
    assert orchestrator.run_log.writes == writes + 1, "only the decision on the load read"
    assert [tables.types(r.run_id)[0] for r in batch] == ["run.started", "run.throttled", "run.throttled"]
    assert reason(tables, batch[1]) == "max_concurrent_runs reached: 2 runs are running"
    assert [e.type for e in orchestrator.observed].count("run.throttled") == 2, "the refusal observed nothing"


async def test_a_run_that_ends_in_the_batch_makes_room_for_a_start_after_it():
    tables = Tables()
    workflow = tables.workflow(WAIT, DONE, max_concurrent_runs=1)
    orchestrator = Instance(tables)
    running, waiting = start(workflow), start(workflow)
    await orchestrator.handle(running)
    timers = orchestrator.run_log.remembered[running.run_id].timers.values()
    timer = next(t for t in timers if t.purpose == "delay")
    fire = FireTimer(tenant_id=TENANT, run_id=running.run_id, timer_id=timer.timer_id)

    assert await orchestrator.handle(fire, waiting) == ["cached"]
    assert tables.types(running.run_id)[-1] == "run.completed"
    assert tables.types(waiting.run_id)[0] == "run.started"


async def test_a_single_message_is_a_batch_of_one():
    tables = Tables()
    workflow = tables.workflow(CALL, DONE)
    orchestrator = Instance(tables)
    run = start(workflow)

    result = succeeded(run)
    assert await orchestrator.handle(run) == ["read"]
    assert await orchestrator.handle(result) == ["cached"]
    assert await orchestrator.handle(result) == ["read"], "redelivered, for a run that is no longer cached"

    assert tables.types(run.run_id) == [
        "run.started",
        "node.succeeded",
        "node.scheduled",
        "node.succeeded",
        "node.succeeded",
        "run.completed",
    ]
    assert tables.claimed == [run.message_id, result.message_id]


async def test_a_message_naming_no_run_is_rejected_before_the_write_that_claims_it():
    tables = Tables()
    workflow = tables.workflow(CALL, DONE)
    orchestrator = Instance(tables)
    stray, run = succeeded(start(workflow)), start(workflow)

    assert await orchestrator.handle(stray, run) == ["read"]

    assert orchestrator.rejected == [(stray, f"no run {stray.run_id}")]
    assert tables.claimed == [stray.message_id, run.message_id]
    assert stray.run_id not in tables.log
