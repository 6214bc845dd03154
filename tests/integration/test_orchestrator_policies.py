"""Run policies through the real services as processes (gateway, orchestrator, node runner on real
Kafka and PostgreSQL): retries with exponential back-off, exhausted retries under each on-error mode,
node and run timeouts, cancel, retry from the failed node, and the concurrent-runs limit.

The services are started once for the module (starting them takes about 20 s on this machine); every
test has a tenant, workflows, runs and a loopback server of its own. A run's log is read from the
``run_events`` table and its durable timers from ``timers``, in the module's schema."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from millrace_common.contracts.messages.node_commands import (
    NODE_RESULT,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.topics import NODES_RESULTS, ConsumerGroup, Namespace
from millrace_common.platform.tables import processed_messages, run_events, timers
from sqlalchemy import Engine, create_engine, select, update
from sqlalchemy.sql import func

from tests.support.api import loopback_tenant
from tests.support.infra import Infra
from tests.support.kafka import kafka_client
from tests.support.network import Answer, LoopbackServer, Received
from tests.support.processes import System

pytestmark = pytest.mark.integration

SERVICES = ("gateway", "orchestrator", "node-runner")
# The orchestrator's back-off jitter is +-20 %; a little slack covers rounding of stored times.
JITTER = (0.8 - 0.01, 1.2 + 0.01)


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def services(infra: Infra, module_namespace: str) -> Iterator[System]:
    running = System(infra, module_namespace)
    try:
        running.start(SERVICES)
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def db(infra: Infra, module_namespace: str) -> Iterator[Engine]:
    schema = infra.settings(module_namespace).database_schema
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={schema}"})
    yield engine
    engine.dispose()


@pytest.fixture
def api(services: System) -> Iterator[httpx.Client]:
    """A signed-in client of a tenant of this test's own, whose nodes may call loopback servers."""
    with loopback_tenant(services, "pol") as client:
        yield client


# -- building and starting workflows ----------------------------------------------------------------


def node(node_id: str, node_type: str, **data: Any) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def create_workflow(api: httpx.Client, nodes: list[dict], edges: list[dict], **settings: Any) -> str:
    definition = {
        "nodes": [node("start", "trigger", kind="manual"), *nodes],
        "edges": edges,
        "settings": settings,
    }
    created = api.post("/api/v1/workflows", json={"name": "policies", "definition": definition})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def run_workflow(api: httpx.Client, workflow_id: str, data: dict | None = None) -> str:
    started = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": data or {}})
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def start_run(api: httpx.Client, nodes: list[dict], edges: list[dict], **settings: Any) -> str:
    return run_workflow(api, create_workflow(api, nodes, edges, **settings))


# -- waiting and reading ----------------------------------------------------------------------------


def eventually(probe: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Poll ``probe`` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


def get_run(api: httpx.Client, run_id: str) -> dict:
    """The run, or {} while the gateway does not know it yet (a 404 problem has a status too)."""
    answer = api.get(f"/api/v1/runs/{run_id}")
    return answer.json() if answer.status_code == 200 else {}


def finished(api: httpx.Client, run_id: str, timeout: float = 25) -> dict:
    def settled() -> dict | None:
        run = get_run(api, run_id)
        return run if run.get("status") not in (None, "running") else None

    return eventually(settled, f"run {run_id} to finish", timeout)


def node_of(run: dict, node_id: str) -> dict:
    return next(n for n in run["nodes"] if n["node_id"] == node_id)


def statuses(run: dict) -> dict[str, str]:
    return {n["node_id"]: n["status"] for n in run.get("nodes", [])}


def node_status_is(api: httpx.Client, run_id: str, node_id: str, status: str) -> Callable[[], bool]:
    return lambda: statuses(get_run(api, run_id)).get(node_id) == status


def log_of(db: Engine, run_id: str) -> list[dict]:
    """The run's event log, in order (each event's stored payload)."""
    with db.connect() as connection:
        rows = connection.execute(
            select(run_events.c.payload)
            .where(run_events.c.run_id == uuid.UUID(run_id))
            .order_by(run_events.c.seq)
        )
        return [row.payload for row in rows]


def events(db: Engine, run_id: str, event_type: str) -> list[dict]:
    return [e for e in log_of(db, run_id) if e["type"] == event_type]


def timers_of(db: Engine, run_id: str) -> list[Any]:
    with db.connect() as connection:
        return connection.execute(select(timers).where(timers.c.run_id == uuid.UUID(run_id))).all()


def bring_timers_due(db: Engine, run_id: str, purpose: str) -> int:
    """Make the run's pending timers of ``purpose`` due now, as if their time had come: the orchestrator's
    own timer loop then fires them. Returns how many there were."""
    with db.begin() as connection:
        changed = connection.execute(
            update(timers)
            .where(timers.c.run_id == uuid.UUID(run_id), timers.c.purpose == purpose)
            .values(fire_at=func.now())
        )
        return changed.rowcount


def at(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


class CallClock:
    """A route answering its n-th call with ``answers[n]`` (the last one repeats) that notes when each
    call arrived, so a test can compare the real gaps between attempts with the back-off."""

    def __init__(self, *answers: Answer) -> None:
        self._answers = answers
        self.arrivals: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, request: Received) -> Answer:
        with self._lock:
            self.arrivals.append(time.monotonic())
            return self._answers[min(len(self.arrivals), len(self._answers)) - 1]


class HeldAnswer:
    """A route that keeps each request waiting until the test releases it (at the latest after
    ``hold_seconds``), then answers 200: a node that is still in flight for as long as a test needs."""

    def __init__(self, hold_seconds: float = 25) -> None:
        self.released = threading.Event()
        self._hold = hold_seconds

    def __call__(self, request: Received) -> Answer:
        self.released.wait(self._hold)
        return Answer(200, {"late": True})


def wait_until_orchestrator_handled_result(
    services: System, db: Engine, run_id: str, node_id: str, attempt: int
) -> NodeSucceededResult | NodeFailedResult:
    """Find the runner's result for the attempt on ``nodes.results`` and wait until the orchestrator has
    recorded it as processed, so a test can then assert what handling it did (or did not) change."""
    result = asyncio.run(_result_on_topic(services, run_id, node_id, attempt))

    def processed() -> bool:
        with db.connect() as connection:
            return (
                connection.execute(
                    select(processed_messages.c.message_id).where(
                        processed_messages.c.consumer == ConsumerGroup.ORCHESTRATOR.value,
                        processed_messages.c.message_id == result.message_id,
                    )
                ).first()
                is not None
            )

    eventually(processed, f"the orchestrator to handle the result of {node_id} attempt {attempt}")
    return result


async def _result_on_topic(
    services: System, run_id: str, node_id: str, attempt: int, timeout: float = 20
) -> NodeSucceededResult | NodeFailedResult:
    name = Namespace(services.namespace).topic(NODES_RESULTS)
    consumer = AIOKafkaConsumer(**kafka_client(services.infra.kafka_bootstrap), fetch_max_wait_ms=50)
    partitions = [TopicPartition(name, p) for p in range(NODES_RESULTS.partitions)]
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    result = NODE_RESULT.validate_json(record.value)
                    if (str(result.run_id), result.node_id, result.attempt) == (run_id, node_id, attempt):
                        return result
        raise AssertionError(f"no result of {node_id} attempt {attempt} of run {run_id} on {name}")
    finally:
        await consumer.stop()


# -- retries ----------------------------------------------------------------------------------------


def test_a_failing_call_is_retried_with_growing_back_off_until_it_succeeds(
    api: httpx.Client, server: LoopbackServer, db: Engine
):
    flaky = CallClock(
        Answer(500, "busy"), Answer(500, "still busy"), Answer(200, {"order": "A-1", "ok": True})
    )
    server.route("/orders", flaky)
    retry = {"max_attempts": 3, "backoff_seconds": 0.5, "backoff_multiplier": 3, "max_backoff_seconds": 10}
    run_id = start_run(
        api,
        [
            node(
                "call", "http_request", method="POST", url=f"{server.url}/orders", body={"n": 1}, retry=retry
            ),
            node("done", "end", output={"order": "{{ nodes.call.output.body.order }}"}),
        ],
        [edge("start", "call"), edge("call", "done")],
    )
    run = finished(api, run_id)

    assert run["status"] == "completed", run
    call = node_of(run, "call")
    assert (call["status"], call["attempts"], call["output"]["status"]) == ("succeeded", 3, 200)
    assert node_of(run, "done")["output"] == {"order": "A-1"}
    calls = server.requests_to("/orders")
    assert [r.header("Idempotency-Key") for r in calls] == [
        f"{run_id}:call:{attempt}" for attempt in (1, 2, 3)
    ]

    retries = events(db, run_id, "node.retry_scheduled")
    assert [(e["node_id"], e["attempt"], e["error"]["type"]) for e in retries] == [
        ("call", 1, "http_status"),
        ("call", 2, "http_status"),
    ]
    waits = [(at(e["retry_at"]) - at(e["occurred_at"])).total_seconds() for e in retries]
    assert JITTER[0] * 0.5 <= waits[0] <= JITTER[1] * 0.5, waits
    assert JITTER[0] * 1.5 <= waits[1] <= JITTER[1] * 1.5, waits
    assert waits[1] > waits[0]
    # The durable retry timer never fires early: each real gap between calls covers its back-off.
    gaps = [later - earlier for earlier, later in zip(flaky.arrivals, flaky.arrivals[1:], strict=False)]
    assert len(gaps) == 2 and all(gap >= wait - 0.05 for gap, wait in zip(gaps, waits, strict=True)), (
        gaps,
        waits,
    )
    assert len(events(db, run_id, "node.succeeded")) == 3  # start, call, done: each once
    assert timers_of(db, run_id) == []


def test_when_retries_are_exhausted_the_run_fails_with_the_nodes_error(
    api: httpx.Client, server: LoopbackServer, db: Engine
):
    server.route("/down", Answer(503, "maintenance"))
    retry = {"max_attempts": 2, "backoff_seconds": 0.2}
    run_id = start_run(
        api,
        [node("call", "http_request", url=f"{server.url}/down", retry=retry), node("after", "end")],
        [edge("start", "call"), edge("call", "after")],
    )
    run = finished(api, run_id)

    assert run["status"] == "failed"
    call = node_of(run, "call")
    assert (call["status"], call["attempts"], call["error"]["type"]) == ("failed", 2, "http_status")
    assert "node 'call' failed" in run["error"] and call["error"]["message"] in run["error"]
    assert "after" not in statuses(run)
    assert len(server.requests_to("/down")) == 2
    assert [e["attempt"] for e in events(db, run_id, "node.retry_scheduled")] == [1]
    failed = events(db, run_id, "run.failed")
    assert len(failed) == 1 and failed[0]["failed_node_id"] == "call"
    assert timers_of(db, run_id) == []


def test_an_error_that_is_not_retryable_fails_at_once_whatever_the_attempts_left(
    api: httpx.Client, server: LoopbackServer, db: Engine
):
    server.route("/missing", Answer(404, "no such thing"))
    run_id = start_run(
        api,
        [
            node(
                "call",
                "http_request",
                url=f"{server.url}/missing",
                retry={"max_attempts": 5, "backoff_seconds": 0.2},
            )
        ],
        [edge("start", "call")],
    )
    run = finished(api, run_id)

    assert run["status"] == "failed"
    assert node_of(run, "call")["attempts"] == 1
    assert node_of(run, "call")["error"]["retryable"] is False
    assert len(server.requests_to("/missing")) == 1
    assert events(db, run_id, "node.retry_scheduled") == []


def test_with_an_error_edge_the_run_follows_it_after_the_last_attempt(
    api: httpx.Client, server: LoopbackServer, db: Engine
):
    server.route("/down", Answer(500, "broken"))
    run_id = start_run(
        api,
        [
            node(
                "call",
                "http_request",
                url=f"{server.url}/down",
                on_error="error_edge",
                retry={"max_attempts": 2, "backoff_seconds": 0.2},
            ),
            node("happy", "set", variables={"path": "happy"}),
            node("handled", "set", variables={"path": "handled", "cause": "{{ nodes.call.error.type }}"}),
            node("done", "end", output={"path": "{{ vars.path }}", "cause": "{{ vars.cause }}"}),
        ],
        [
            edge("start", "call"),
            edge("call", "happy"),
            edge("call", "handled", "error"),
            edge("happy", "done"),
            edge("handled", "done"),
        ],
    )
    run = finished(api, run_id)

    assert run["status"] == "completed", run
    assert statuses(run) == {
        "start": "succeeded",
        "call": "failed",
        "happy": "skipped",
        "handled": "succeeded",
        "done": "succeeded",
    }
    assert node_of(run, "call")["attempts"] == 2
    assert node_of(run, "done")["output"] == {"path": "handled", "cause": "http_status"}
    assert len(server.requests_to("/down")) == 2
    assert events(db, run_id, "run.failed") == []


def test_with_a_fallback_the_node_succeeds_with_the_fallback_output(
    api: httpx.Client, server: LoopbackServer, db: Engine
):
    server.route("/price", Answer(502, "bad gateway"))
    fallback = {"status": 0, "body": {"price": 9.5, "source": "fallback"}}
    run_id = start_run(
        api,
        [
            node(
                "call",
                "http_request",
                url=f"{server.url}/price",
                on_error="fallback",
                fallback_output=fallback,
            ),
            node(
                "done",
                "end",
                output={
                    "price": "{{ nodes.call.output.body.price }}",
                    "from": "{{ nodes.call.output.body.source }}",
                },
            ),
        ],
        [edge("start", "call"), edge("call", "done")],
        retry_count=1,  # the workflow's default: two attempts for nodes without a retry policy
    )
    run = finished(api, run_id)

    assert run["status"] == "completed", run
    call = node_of(run, "call")
    assert (call["status"], call["attempts"], call["output"]) == ("succeeded", 2, fallback)
    assert node_of(run, "done")["output"] == {"price": 9.5, "from": "fallback"}
    assert len(server.requests_to("/price")) == 2
    assert [e["error"]["type"] for e in events(db, run_id, "node.retry_scheduled")] == ["http_status"]


# -- timeouts ---------------------------------------------------------------------------------------


def test_an_attempt_slower_than_the_node_timeout_fails_as_timed_out_and_is_retried(
    api: httpx.Client, server: LoopbackServer, db: Engine
):
    server.route("/slow", Answer(200, {"late": True}, delay_seconds=4))
    retry = {"max_attempts": 2, "backoff_seconds": 0.2, "retry_on": ["timeout"]}
    run_id = start_run(
        api,
        [
            node("call", "http_request", url=f"{server.url}/slow", timeout_seconds=1, retry=retry),
            node("done", "end"),
        ],
        [edge("start", "call"), edge("call", "done")],
    )
    run = finished(api, run_id)

    assert run["status"] == "failed"
    call = node_of(run, "call")
    assert (call["status"], call["attempts"], call["error"]["type"]) == ("failed", 2, "timeout")
    retried = events(db, run_id, "node.retry_scheduled")
    assert [(e["attempt"], e["error"]["type"]) for e in retried] == [(1, "timeout")]
    # The runner cut the attempt at its timeout, not when the server would have answered (4 s).
    assert [900 <= e["duration_ms"] < 3000 for e in events(db, run_id, "node.failed")] == [True]
    assert len(server.requests_to("/slow")) == 2


def test_an_attempt_whose_result_is_late_is_waited_for_never_failed_or_tried_again(
    api: httpx.Client, server: LoopbackServer, db: Engine, services: System
):
    # The runner enforces timeout_seconds itself and commits a command only once its result is out,
    # so the orchestrator keeps no backstop of its own: a node whose result is late waits for it
    # (bounded by the run's timeout), with no timer, no failure and no second attempt meanwhile.
    held = HeldAnswer(hold_seconds=120)
    server.route("/held", held)
    try:
        run_id = start_run(
            api,
            [node("call", "http_request", url=f"{server.url}/held", timeout_seconds=60), node("done", "end")],
            [edge("start", "call"), edge("call", "done")],
            retry_count=3,
        )
        eventually(lambda: server.requests_to("/held"), "the runner to call the server")
        assert [t.purpose for t in timers_of(db, run_id)] == ["run_timeout"]
        time.sleep(2)
        run = get_run(api, run_id)
        assert (run["status"], node_of(run, "call")["status"]) == ("running", "scheduled")
    finally:
        held.released.set()
    run = finished(api, run_id)
    assert run["status"] == "completed" and node_of(run, "call")["attempts"] == 1
    assert len(server.requests_to("/held")) == 1
    assert [e for e in log_of(db, run_id) if e["type"] == "node.retry_scheduled"] == []


def test_a_run_past_its_timeout_ends_timed_out_and_its_timers_are_gone(api: httpx.Client, db: Engine):
    # timeout_minutes is the finest setting (at least 1 minute): the test checks the run_timeout timer
    # is due a minute after the start, then brings it due so the timer loop fires it now.
    run_id = start_run(
        api,
        [node("pause", "wait_delay", duration_seconds=600), node("done", "end")],
        [edge("start", "pause"), edge("pause", "done")],
        timeout_minutes=1,
    )
    eventually(node_status_is(api, run_id, "pause", "scheduled"), "the delay to start")
    started = at(get_run(api, run_id)["started_at"])
    pending = {t.purpose: t for t in timers_of(db, run_id)}
    assert set(pending) == {"run_timeout", "delay"}
    assert 59 <= (pending["run_timeout"].fire_at - started).total_seconds() <= 61
    assert bring_timers_due(db, run_id, "run_timeout") == 1
    run = finished(api, run_id)

    assert run["status"] == "timed_out"
    assert run["error"] == "the run exceeded its timeout of 1 minute(s)"
    assert statuses(run) == {"start": "succeeded", "pause": "abandoned"}
    assert [e["timer_id"] for e in events(db, run_id, "timer.fired")] == [
        str(pending["run_timeout"].timer_id)
    ]
    assert timers_of(db, run_id) == []
    assert events(db, run_id, "run.timed_out")[-1] == log_of(db, run_id)[-1]


# -- cancel -----------------------------------------------------------------------------------------


def test_cancelling_a_run_waiting_in_a_delay_ends_it_and_drops_its_timers(api: httpx.Client, db: Engine):
    run_id = start_run(
        api,
        [node("pause", "wait_delay", duration_seconds=600), node("done", "end")],
        [edge("start", "pause"), edge("pause", "done")],
    )
    eventually(node_status_is(api, run_id, "pause", "scheduled"), "the delay to start")
    assert {t.purpose for t in timers_of(db, run_id)} == {"run_timeout", "delay"}

    answer = api.post(f"/api/v1/runs/{run_id}/cancel")
    assert answer.status_code == 202, answer.text
    run = finished(api, run_id)

    assert run["status"] == "cancelled"
    assert statuses(run) == {"start": "succeeded", "pause": "abandoned"}
    assert timers_of(db, run_id) == []
    cancelled = events(db, run_id, "run.cancelled")
    assert len(cancelled) == 1 and cancelled[0]["requested_by"]
    again = api.post(f"/api/v1/runs/{run_id}/cancel")
    assert again.status_code == 409 and "cancelled" in again.text


def test_a_result_arriving_after_cancel_changes_nothing(
    api: httpx.Client, server: LoopbackServer, db: Engine, services: System
):
    held = HeldAnswer()
    server.route("/held", held)
    try:
        run_id = start_run(
            api,
            [node("call", "http_request", url=f"{server.url}/held", timeout_seconds=20), node("done", "end")],
            [edge("start", "call"), edge("call", "done")],
        )
        eventually(lambda: server.requests_to("/held"), "the runner to call the server")
        assert api.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
        run = finished(api, run_id)
        assert run["status"] == "cancelled"
        assert timers_of(db, run_id) == []
        log_length = len(log_of(db, run_id))
    finally:
        held.released.set()

    late = wait_until_orchestrator_handled_result(services, db, run_id, "call", 1)
    assert isinstance(late, NodeSucceededResult)
    assert len(log_of(db, run_id)) == log_length
    run = get_run(api, run_id)
    assert run["status"] == "cancelled"
    assert statuses(run) == {"start": "succeeded", "call": "abandoned"}
    assert node_of(run, "call")["output"] is None


# -- retry from the failed node ---------------------------------------------------------------------


def test_retrying_a_failed_run_reruns_only_the_failed_node_and_keeps_earlier_outputs(
    api: httpx.Client, server: LoopbackServer, db: Engine
):
    server.route("/token", Answer(200, {"token": "t-1"}))
    server.route("/submit", Answer(500, "down"))
    run_id = start_run(
        api,
        [
            node("a", "http_request", url=f"{server.url}/token"),
            node(
                "b",
                "http_request",
                method="POST",
                url=f"{server.url}/submit",
                body={"token": "{{ nodes.a.output.body.token }}"},
            ),
            node("done", "end", output={"accepted": "{{ nodes.b.output.body.accepted }}"}),
        ],
        [edge("start", "a"), edge("a", "b"), edge("b", "done")],
        retry_count=0,
    )
    failed = finished(api, run_id)
    assert failed["status"] == "failed"
    assert statuses(failed) == {"start": "succeeded", "a": "succeeded", "b": "failed"}
    a_output = node_of(failed, "a")["output"]
    assert a_output["body"] == {"token": "t-1"}

    server.route("/submit", Answer(200, {"accepted": True}))
    answer = api.post(f"/api/v1/runs/{run_id}/retry")
    assert answer.status_code == 202, answer.text
    eventually(lambda: events(db, run_id, "run.retried"), "the retry to be recorded")
    run = finished(api, run_id)

    assert run["status"] == "completed", run
    assert run["error"] is None
    assert statuses(run) == {"start": "succeeded", "a": "succeeded", "b": "succeeded", "done": "succeeded"}
    assert (node_of(run, "a")["attempts"], node_of(run, "a")["output"]) == (1, a_output)
    assert node_of(run, "b")["attempts"] == 2
    assert node_of(run, "done")["output"] == {"accepted": True}
    assert len(server.requests_to("/token")) == 1
    submits = server.requests_to("/submit")
    assert [s.json() for s in submits] == [{"token": "t-1"}, {"token": "t-1"}]
    assert [s.header("Idempotency-Key") for s in submits] == [f"{run_id}:b:1", f"{run_id}:b:2"]
    assert [e["node_id"] for e in events(db, run_id, "node.scheduled")] == ["a", "b", "b"]
    assert events(db, run_id, "run.retried")[0]["node_ids"] == ["b"]
    assert api.post(f"/api/v1/runs/{run_id}/retry").status_code == 409


# -- limits -----------------------------------------------------------------------------------------


def test_a_run_beyond_max_concurrent_runs_is_throttled_with_the_reason_and_kept(
    api: httpx.Client, db: Engine
):
    workflow_id = create_workflow(
        api,
        [node("pause", "wait_delay", duration_seconds=600), node("done", "end")],
        [edge("start", "pause"), edge("pause", "done")],
        max_concurrent_runs=1,
    )
    first = run_workflow(api, workflow_id)
    eventually(node_status_is(api, first, "pause", "scheduled"), "the first run to wait")

    second = run_workflow(api, workflow_id)
    throttled = finished(api, second)
    assert throttled["status"] == "throttled"
    assert throttled["error"] == "max_concurrent_runs reached: 1 runs are running"
    assert [e["type"] for e in log_of(db, second)] == ["run.throttled"]
    assert log_of(db, second)[0]["reason"] == throttled["error"]
    listed = api.get("/api/v1/runs", params={"workflow_id": workflow_id}).json()["items"]
    assert {r["run_id"]: r["status"] for r in listed} == {first: "running", second: "throttled"}
    assert get_run(api, first)["status"] == "running"

    # Once the first run has ended, the limit lets the next one start.
    assert api.post(f"/api/v1/runs/{first}/cancel").status_code == 202
    assert finished(api, first)["status"] == "cancelled"
    third = run_workflow(api, workflow_id)
    eventually(node_status_is(api, third, "pause", "scheduled"), "the third run to start")
    assert get_run(api, third)["status"] == "running"
    assert api.post(f"/api/v1/runs/{third}/cancel").status_code == 202
    assert finished(api, third)["status"] == "cancelled"
