"""A polled batch decided as a whole (``domain.batch.decide_batch``): each message on the state the
earlier ones left, the workflow's load carried forward, duplicates skipped, unknown messages
rejected but claimed; and, for a batch decided on remembered states and an assumed load, what its
write must find, and when it may not be written at all."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.contracts.messages.node_commands import NodeSucceededResult
from millrace_common.contracts.messages.run_commands import FireTimer, StartRun, TriggerData
from millrace_common.contracts.messages.run_events import RunThrottled
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.batch import THROTTLED_ON_ASSUMED_LOAD, LoadedBatch, decide_batch
from millrace_orchestrator.domain.decide import Message, WorkflowLoad, WorkflowStarts, decide
from millrace_orchestrator.domain.state import RunState

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)
TENANT = "acme"
WORKFLOW = uuid4()


def definition(second: dict, **settings: object) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "nodes": [
                {"id": "start", "type": "trigger", "data": {"name": "start", "kind": "manual"}},
                second,
                {"id": "done", "type": "end", "data": {"name": "done"}},
            ],
            "edges": [
                {"id": "e1", "source": "start", "target": second["id"]},
                {"id": "e2", "source": second["id"], "target": "done"},
            ],
            "settings": settings,
        }
    )


CALL = {"id": "call", "type": "http_request", "data": {"name": "call", "url": "http://example.test/x"}}
WAIT = {"id": "wait", "type": "wait_delay", "data": {"name": "wait", "duration_seconds": 600}}


def ids():
    counter = itertools.count(1)
    return lambda: UUID(int=next(counter))


def start(run_id: UUID | None = None) -> StartRun:
    run_id = run_id or uuid4()
    return StartRun(
        tenant_id=TENANT,
        run_id=run_id,
        workflow_id=WORKFLOW,
        workflow_version=1,
        trigger=TriggerData(kind="manual"),
        idempotency_key=str(run_id),
    )


def new_runs(version: WorkflowDefinition, *messages: Message) -> dict[UUID, RunState]:
    return {m.run_id: RunState(m.run_id, version) for m in messages}


def test_each_message_is_decided_on_the_state_the_earlier_ones_left():
    version = definition(CALL)
    run = start()
    result = NodeSucceededResult(
        tenant_id=TENANT, run_id=run.run_id, node_id="call", attempt=1, output={}, duration_ms=1
    )
    loaded = LoadedBatch(new_runs(version, run), loads={(TENANT, WORKFLOW): WorkflowLoad()})

    decision = decide_batch([run, result], loaded, now=NOW, new_id=ids())

    assert decision.claims == (run.message_id, result.message_id)
    assert [e.seq for e in decision.events] == list(range(1, len(decision.events) + 1))
    assert decision.events[-1].type == "run.completed"
    assert decision.states[run.run_id].finished
    assert decision.assumptions is None and decision.refused is None


def test_starts_are_throttled_on_the_load_carried_from_one_start_to_the_next():
    version = definition(WAIT, max_executions_per_hour=100)
    runs = [start() for _ in range(3)]
    load = WorkflowLoad(started_last_hour=98, running=5)
    loaded = LoadedBatch(new_runs(version, *runs), loads={(TENANT, WORKFLOW): load})

    decision = decide_batch(runs, loaded, now=NOW, new_id=ids())

    firsts = [next(e for e in decision.events if e.run_id == r.run_id) for r in runs]
    assert [e.type for e in firsts] == ["run.started", "run.started", "run.throttled"]
    assert isinstance(firsts[2], RunThrottled)
    assert firsts[2].reason == "max_executions_per_hour reached: 100 runs started in the last hour"
    assert decision.refused is None, "a load read is not assumed"


@settings(max_examples=60, deadline=None)
@given(limit=st.integers(1, 20), already=st.integers(0, 25), asked=st.integers(0, 40))
def test_starts_never_go_beyond_the_hourly_limit_and_the_first_refused_ends_the_starts(limit, already, asked):
    """The hourly limit has one judge: whatever started them (a trigger or a person), a workflow starts
    at most ``max_executions_per_hour`` runs in an hour; in order, the starts beyond it are throttled."""
    version = definition(WAIT, max_executions_per_hour=limit)
    runs = [start() for _ in range(asked)]
    load = WorkflowLoad(started_last_hour=already)
    loaded = LoadedBatch(new_runs(version, *runs), loads={(TENANT, WORKFLOW): load})

    decision = decide_batch(runs, loaded, now=NOW, new_id=ids())

    firsts = [next(e for e in decision.events if e.run_id == r.run_id).type for r in runs]
    assert firsts.count("run.started") == max(0, min(asked, limit - already))
    assert set(firsts) <= {"run.started", "run.throttled"}
    first_refused = firsts.index("run.throttled") if "run.throttled" in firsts else asked
    assert all(t == "run.throttled" for t in firsts[first_refused:])


def test_messages_handled_before_or_repeated_are_skipped_and_unknown_ones_rejected_but_claimed():
    version = definition(WAIT)
    handled, stray, fresh = start(), start(), start()
    loaded = LoadedBatch(
        new_runs(version, fresh),
        loads={(TENANT, WORKFLOW): WorkflowLoad()},
        handled_before=frozenset({handled.message_id}),
        unknown={stray.message_id: "workflow has no version 1"},
    )

    decision = decide_batch([handled, stray, fresh, fresh], loaded, now=NOW, new_id=ids())

    assert decision.skipped == 2
    assert decision.rejected == ((stray, "workflow has no version 1"),)
    assert decision.claims == (stray.message_id, fresh.message_id)
    assert {e.run_id for e in decision.events} == {fresh.run_id}


def test_a_batch_on_remembered_states_names_the_seqs_and_the_starts_its_write_must_find():
    version = definition(WAIT, max_concurrent_runs=3, max_executions_per_hour=10)
    running = decide(RunState(uuid4(), version), start(), now=NOW, new_id=ids()).state
    assert running is not None
    timer = next(t for t in running.timers.values() if t.purpose == "delay")
    fire = FireTimer(tenant_id=TENANT, run_id=running.run_id, timer_id=timer.timer_id)
    first, second = start(), start()
    states = {running.run_id: running, **new_runs(version, first, second)}

    decision = decide_batch([first, fire, second], LoadedBatch(states, assumed=True), now=NOW, new_id=ids())

    assert decision.refused is None
    assert decision.assumptions is not None
    assert decision.assumptions.last_seqs == {
        running.run_id: running.last_seq,
        first.run_id: 0,
        second.run_id: 0,
    }
    assert decision.assumptions.starts == {
        (TENANT, WORKFLOW): WorkflowStarts(starts=2, peak=1, per_hour=10, concurrent=3)
    }


def test_a_run_throttled_on_the_assumed_load_refuses_the_batch():
    version = definition(WAIT, max_concurrent_runs=2)
    runs = [start() for _ in range(3)]

    decision = decide_batch(runs, LoadedBatch(new_runs(version, *runs), assumed=True), now=NOW, new_id=ids())

    assert decision.refused == THROTTLED_ON_ASSUMED_LOAD
    assert [e.type for e in decision.events].count("run.throttled") == 1


# -- the assumed load against every load that may be read ---------------------------------------------


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Message], dict[UUID, RunState], WorkflowLoad]:
    """Starts of one workflow mixed with the ends of some of its running runs (their delay fires), and
    a load the database might hold: the running runs the batch names, others, and earlier starts."""
    per_hour = draw(st.integers(1, 6))
    concurrent = draw(st.none() | st.integers(1, 4))
    version = definition(WAIT, max_executions_per_hour=per_hour, max_concurrent_runs=concurrent)
    new_id = ids()
    running: list[RunState] = []
    for _ in range(draw(st.integers(0, 3))):
        state = decide(RunState(uuid4(), version), start(), now=NOW, new_id=new_id).state
        assert state is not None
        running.append(state)
    ending = iter(running)
    messages: list[Message] = []
    for op in draw(st.lists(st.sampled_from(["start", "end"]), max_size=8)):
        ends = next(ending, None) if op == "end" else None
        if ends is not None:
            timer = next(t for t in ends.timers.values() if t.purpose == "delay")
            messages.append(FireTimer(tenant_id=TENANT, run_id=ends.run_id, timer_id=timer.timer_id))
        elif op == "start":
            messages.append(start())
    states = {s.run_id: s for s in running} | {
        m.run_id: RunState(m.run_id, version) for m in messages if isinstance(m, StartRun)
    }
    load = WorkflowLoad(
        started_last_hour=len(running) + draw(st.integers(0, 6)),
        running=len(running) + draw(st.integers(0, 3)),
    )
    return messages, states, load


@given(batch=batches())
@settings(max_examples=300, deadline=None)
def test_a_batch_whose_write_check_holds_decides_as_on_the_load_read_and_a_refused_one_would_throttle(
    batch: tuple[list[Message], dict[UUID, RunState], WorkflowLoad],
):
    messages, states, load = batch
    assumed = decide_batch(messages, LoadedBatch(states, assumed=True), now=NOW, new_id=ids())
    read = decide_batch(
        messages, LoadedBatch(states, loads={(TENANT, WORKFLOW): load}), now=NOW, new_id=ids()
    )
    assert assumed.assumptions is not None
    holds = all(
        load.started_last_hour + s.starts <= s.per_hour
        and (s.concurrent is None or load.running + s.peak <= s.concurrent)
        for s in assumed.assumptions.starts.values()
    )
    if assumed.refused is not None:
        assert any(isinstance(e, RunThrottled) for e in read.events), "a refusal never loses a start"
    elif holds:
        assert read.events == assumed.events
        assert read.commands == assumed.commands
