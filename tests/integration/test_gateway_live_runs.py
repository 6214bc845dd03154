"""The gateway's live-run API against real processes (gateway and orchestrator), real Kafka and real
PostgreSQL: Server-Sent Events for one run and for one workflow, resuming, tenant isolation, and the
workflow and run endpoints the visual builder reads."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from millrace_common.contracts.topics import RUNS_EVENTS, Namespace

from tests.support.api import Account, client, provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.kafka import kafka_client
from tests.support.processes import System

pytestmark = pytest.mark.integration

HEARTBEAT_SECONDS = 3
INBOX_SIZE = 20
PAUSE_SECONDS = 2
TERMINAL = {"run.completed", "run.failed", "run.cancelled", "run.timed_out", "run.throttled"}


@dataclass(frozen=True)
class Message:
    """One Server-Sent Events message, or one comment line (``comment`` set, the rest None)."""

    id: str | None = None
    event: str | None = None
    data: str | None = None
    comment: str | None = None


def sse(response: httpx.Response) -> Iterator[Message]:
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            yield Message(comment=line[1:].strip())
        elif line == "":
            if fields:
                yield Message(fields.get("id"), fields.get("event"), fields.get("data"))
            fields = {}
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields[name] = f"{fields[name]}\n{value}" if name == "data" and name in fields else value


@contextmanager
def stream(api: httpx.Client, path: str, **kwargs) -> Iterator[httpx.Response]:
    timeout = httpx.Timeout(10, read=HEARTBEAT_SECONDS * 4)
    with api.stream("GET", path, timeout=timeout, **kwargs) as response:
        yield response


def events_until_end(response: httpx.Response) -> list[Message]:
    """Every event until the server closes the stream."""
    return [m for m in sse(response) if m.comment is None]


def events_through(messages: Iterator[Message], event: str) -> list[Message]:
    """The events (comments left out) up to and including the first ``event``."""
    found = []
    for message in messages:
        if message.comment is None:
            found.append(message)
            if message.event == event:
                break
    return found


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "position": {"x": 0, "y": 0}, "data": {"name": node_id, **data}}


def edge(source: str, target: str) -> dict:
    return {"id": f"{source}-{target}", "source": source, "target": target}


def chain(*nodes: dict, kind: str = "manual", **trigger) -> dict:
    every = [node("start", "trigger", kind=kind, **trigger), *nodes]
    return {"nodes": every, "edges": [edge(a["id"], b["id"]) for a, b in itertools.pairwise(every)]}


def paused_chain(seconds: float) -> dict:
    return chain(
        node("before", "set", variables={"n": "{{ trigger.n }}"}),
        node("pause", "wait_delay", duration_seconds=seconds),
        node("after", "set", variables={"m": "{{ vars.n }}"}),
        node("done", "end"),
    )


def create_workflow(api: httpx.Client, definition: dict, name: str = "live") -> str:
    created = api.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def start_run(api: httpx.Client, workflow_id: str, data: dict | None = None) -> str:
    started = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": data or {"n": 1}})
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def wait_for_status(api: httpx.Client, run_id: str, wanted: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        if answer.status_code == 200 and answer.json()["status"] in wanted:
            return answer.json()
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not reach {wanted}: {answer.text}")


def published(infra: Infra, namespace: str, run_id: str, timeout: float = 30) -> dict[int, str]:
    """The run's events exactly as they sit on ``runs.events``, by seq, read up to its terminal one."""

    async def read() -> dict[int, str]:
        consumer = AIOKafkaConsumer(
            Namespace(namespace).topic(RUNS_EVENTS),
            **kafka_client(infra.kafka_bootstrap),
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await consumer.start()
        found: dict[int, str] = {}
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    for record in records:
                        event = json.loads(record.value)
                        if event["run_id"] == run_id:
                            found.setdefault(event["seq"], record.value.decode())
                if any(json.loads(v)["type"] in TERMINAL for v in found.values()):
                    return found
            raise AssertionError(f"run {run_id} has no terminal event on the topic: {sorted(found)}")
        finally:
            await consumer.stop()

    return asyncio.run(read())


def live_streams(gateway: str) -> dict[str, float]:
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    return {
        m[1]: float(m[2])
        for m in re.finditer(r'^millrace_live_streams\{follows="(\w+)"\} (\S+)$', text, re.MULTILINE)
    }


def streams_settle_at(gateway: str, expected: dict[str, float], seconds: float = 10) -> dict[str, float]:
    """The live-stream gauges once they equal ``expected``, or as they are after ``seconds``: a stream
    whose client went away is counted until the server notices (the connection's close, or at worst
    its next write)."""
    deadline = time.monotonic() + seconds
    while (found := live_streams(gateway)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def overflows(gateway: str) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    return float(re.search(r"^millrace_live_overflows_total (\S+)$", text, re.MULTILINE)[1])


@pytest.fixture(scope="module")
def live_system(infra: Infra, module_namespace: str) -> Iterator[System]:
    running = System(infra, module_namespace)
    env = {
        "MILLRACE_LIVE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
        "MILLRACE_LIVE_RUN_WAIT_SECONDS": "2",
        "MILLRACE_LIVE_INBOX_SIZE": str(INBOX_SIZE),
        "MILLRACE_LIVE_FEED_PAUSE_SECONDS": str(PAUSE_SECONDS),
    }
    try:
        running.start(("gateway", "orchestrator"), extra_env=env)
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def gateway(live_system: System) -> str:
    return live_system.url("gateway")


@pytest.fixture(scope="module")
def owner(live_system: System) -> Account:
    return provision_tenant(live_system.infra, live_system.namespace, f"live{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def api(gateway: str, owner: Account) -> Iterator[httpx.Client]:
    with signed_in(gateway, owner) as signed:
        yield signed


@pytest.fixture(scope="module")
def intruder(gateway: str, live_system: System) -> Iterator[httpx.Client]:
    account = provision_tenant(live_system.infra, live_system.namespace, f"other{uuid.uuid4().hex[:6]}")
    with signed_in(gateway, account) as signed:
        yield signed


# --- one run's stream ------------------------------------------------------------------------


def test_a_runs_stream_delivers_its_events_in_seq_order_as_published_and_ends_after_the_terminal_one(
    api: httpx.Client, live_system: System
):
    workflow_id = create_workflow(api, paused_chain(1.5))
    run_id = start_run(api, workflow_id, {"n": 7})
    with stream(api, f"/api/v1/runs/{run_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        arrivals: list[tuple[float, Message]] = []
        for message in sse(response):
            arrivals.append((time.time(), message))
    events = [m for _, m in arrivals if m.comment is None]

    assert [int(m.id) for m in events] == list(range(1, len(events) + 1))
    assert events[0].event == "run.started" and events[-1].event == "run.completed"
    assert [m.event for m in events if m.event in TERMINAL] == ["run.completed"]
    assert all(
        json.loads(m.data)["type"] == m.event and json.loads(m.data)["seq"] == int(m.id) for m in events
    )
    following_since = arrivals[0][0]
    assert arrivals[0][1].comment == "following run"
    completed = events[-1]
    occurred = datetime.fromisoformat(json.loads(completed.data)["occurred_at"]).timestamp()
    assert following_since < occurred, "the stream was open before the run ended (the pause sees to it)"

    # The same documents as on the topic; the log (JSONB) may order the keys of free-form objects its own way.
    on_topic = published(live_system.infra, live_system.namespace, run_id)
    assert {int(m.id): json.loads(m.data) for m in events} == {
        seq: json.loads(raw) for seq, raw in on_topic.items()
    }
    assert completed.data == on_topic[int(completed.id)], "a live event is passed on byte for byte"

    with stream(api, f"/api/v1/runs/{run_id}/events") as replay:
        replayed = [(m.id, m.event, json.loads(m.data)) for m in events_until_end(replay)]
    assert replayed == [(m.id, m.event, json.loads(m.data)) for m in events]


def test_reconnecting_with_last_event_id_resumes_with_exactly_the_missing_events(api: httpx.Client):
    workflow_id = create_workflow(api, paused_chain(2))
    run_id = start_run(api, workflow_id)
    first: list[Message] = []
    with stream(api, f"/api/v1/runs/{run_id}/events") as response:
        for message in sse(response):
            if message.comment is None:
                first.append(message)
            if message.event == "timer.scheduled":
                break
    assert first and first[-1].event == "timer.scheduled"
    last_id = first[-1].id

    with stream(api, f"/api/v1/runs/{run_id}/events", headers={"Last-Event-ID": last_id}) as response:
        rest = events_until_end(response)
    with stream(api, f"/api/v1/runs/{run_id}/events") as response:
        whole = events_until_end(response)
    assert rest[-1].event == "run.completed"
    assert [(m.id, json.loads(m.data)) for m in first + rest] == [(m.id, json.loads(m.data)) for m in whole]

    middle = len(whole) // 2
    with stream(api, f"/api/v1/runs/{run_id}/events", params={"after": whole[middle].id}) as response:
        assert [m.id for m in events_until_end(response)] == [m.id for m in whole[middle + 1 :]]
    with stream(api, f"/api/v1/runs/{run_id}/events", headers={"Last-Event-ID": whole[-1].id}) as response:
        assert response.status_code == 200
        assert events_until_end(response) == [], "after the terminal event there is nothing more to say"


def republish(infra: Infra, namespace: str, run_id: str, values: list[bytes]) -> None:
    """Put messages on ``runs.events`` as a redelivering relay would."""

    async def send() -> None:
        producer = AIOKafkaProducer(**kafka_client(infra.kafka_bootstrap))
        await producer.start()
        try:
            for value in values:
                await producer.send_and_wait(
                    Namespace(namespace).topic(RUNS_EVENTS), value, key=run_id.encode()
                )
        finally:
            await producer.stop()

    asyncio.run(send())


def test_a_stream_drops_redelivered_events_fills_gaps_from_the_log_and_ends_when_the_run_is_cancelled(
    api: httpx.Client, gateway: str, live_system: System
):
    workflow_id = create_workflow(api, paused_chain(60))
    with ExitStack() as stack:
        watched = sse(stack.enter_context(stream(api, f"/api/v1/workflows/{workflow_id}/events")))
        assert next(watched).comment == "following workflow"
        run_id = start_run(api, workflow_id)
        messages = sse(stack.enter_context(stream(api, f"/api/v1/runs/{run_id}/events")))
        first = events_through(messages, "timer.scheduled")
        # Streams of the tests before are counted until the server notices their clients went away.
        assert streams_settle_at(gateway, {"run": 1.0, "workflow": 1.0}) == {"run": 1.0, "workflow": 1.0}
        # At-least-once delivery: an event the stream sent already comes again; and one arrives whose
        # predecessors this gateway never saw (its seq is far ahead of anything the log will hold).
        again = first[0].data.encode()
        ahead = json.loads(first[-1].data) | {"seq": 10_000, "message_id": str(uuid.uuid4())}
        republish(live_system.infra, live_system.namespace, run_id, [again, json.dumps(ahead).encode()])
        assert api.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
        rest = [m for m in messages if m.comment is None]
        seen_by_workflow = []
        for message in watched:
            if message.comment is None:
                seen_by_workflow.append(message)
            if message.event == "run.cancelled":
                break
    events = first + rest
    assert [m.event for m in rest][-1] == "run.cancelled"
    assert [int(m.id) for m in events] == list(range(1, len(events) + 1))
    assert all(json.loads(m.data)["seq"] == int(m.id) for m in events)
    workflow_ids = [m.id for m in seen_by_workflow]
    assert workflow_ids[0] == f"{run_id}/1" and workflow_ids.count(f"{run_id}/1") == 1, (
        "no redelivery repeated"
    )
    assert f"{run_id}/{len(events)}" in workflow_ids

    closed = {"run": 0.0, "workflow": 0.0}
    assert streams_settle_at(gateway, closed) == closed, "closed streams leave no follower behind"


def test_a_stream_whose_inbox_overflows_catches_up_from_the_log_without_losing_an_event(
    api: httpx.Client, gateway: str
):
    items = INBOX_SIZE * 5
    definition = chain(
        node("pause", "wait_delay", duration_seconds=1), node("each", "for_each", items="{{ trigger.names }}")
    )
    body = {**node("greet", "set", variables={"g": "{{ item }}"}), "parentId": "each"}
    definition["nodes"] += [body, node("done", "end")]
    definition["edges"].append({**edge("each", "done"), "sourceHandle": "done"})
    workflow_id = create_workflow(api, definition)
    run_id = start_run(api, workflow_id, {"names": [f"n{i}" for i in range(items)]})
    before = overflows(gateway)
    with stream(api, f"/api/v1/runs/{run_id}/events") as response:
        events = events_until_end(response)
    assert overflows(gateway) > before, "the for_each's burst came in faster than the inbox holds"
    assert [int(m.id) for m in events] == list(range(1, len(events) + 1))
    assert events[-1].event == "run.completed"
    assert sum(m.event == "for_each.item_completed" for m in events) == items


def test_resume_positions_and_credentials_are_checked(api: httpx.Client, gateway: str):
    workflow_id = create_workflow(api, chain(node("done", "end")))
    run_id = start_run(api, workflow_id)
    wait_for_status(api, run_id, {"completed"})
    bad_header = api.get(f"/api/v1/runs/{run_id}/events", headers={"Last-Event-ID": "seven"})
    assert bad_header.status_code == 422
    assert [d["pointer"] for d in bad_header.json()["errors"]] == ["/header/last-event-id"]
    negative = api.get(f"/api/v1/runs/{run_id}/events", params={"after": -1})
    assert negative.status_code == 422 and negative.json()["errors"][0]["pointer"] == "/query/after"
    with client(gateway, None) as anonymous:
        assert anonymous.get(f"/api/v1/runs/{run_id}/events").status_code == 401
        assert anonymous.get(f"/api/v1/workflows/{workflow_id}/events").status_code == 401
    assert api.get(f"/api/v1/runs/{uuid.uuid4()}/events").status_code == 404
    assert api.get(f"/api/v1/workflows/{uuid.uuid4()}/events").status_code == 404


# --- one workflow's stream -------------------------------------------------------------------


def test_a_workflow_stream_sees_a_run_started_after_connecting_and_only_that_workflows_runs(
    api: httpx.Client,
):
    watched = create_workflow(api, paused_chain(0.5), name="watched")
    other = create_workflow(api, paused_chain(0.5), name="other")
    with stream(api, f"/api/v1/workflows/{watched}/events") as response:
        messages = sse(response)
        assert next(messages).comment == "following workflow"
        noise = start_run(api, other)
        runs = [start_run(api, watched, {"n": i}) for i in range(2)]
        seen: list[Message] = []
        ended: set[str] = set()
        for message in messages:
            if message.comment is not None:
                continue
            seen.append(message)
            if message.event in TERMINAL:
                ended.add(json.loads(message.data)["run_id"])
            if ended == set(runs):
                break
        heartbeat = next(m for m in messages if m.comment is not None)
    assert heartbeat.comment == "heartbeat"
    wait_for_status(api, noise, {"completed"})

    by_run: dict[str, list[int]] = {}
    for message in seen:
        run_id, _, seq = message.id.partition("/")
        data = json.loads(message.data)
        assert (data["run_id"], data["seq"], data["type"]) == (run_id, int(seq), message.event)
        by_run.setdefault(run_id, []).append(int(seq))
    assert set(by_run) == set(runs), "the other workflow's run is not in this stream"
    for seqs in by_run.values():
        assert seqs == list(range(1, len(seqs) + 1))


# --- tenants ---------------------------------------------------------------------------------


def test_another_tenant_gets_404_for_both_streams_and_never_sees_the_events(
    api: httpx.Client, intruder: httpx.Client
):
    workflow_id = create_workflow(api, paused_chain(1))
    own_workflow = create_workflow(intruder, paused_chain(1))
    with stream(intruder, f"/api/v1/workflows/{own_workflow}/events") as watching:
        intruder_messages = sse(watching)
        assert next(intruder_messages).comment == "following workflow"
        run_id = start_run(api, workflow_id)
        with stream(intruder, f"/api/v1/runs/{run_id}/events") as refused:
            refused.read()
            assert refused.status_code == 404
            assert refused.json()["code"] == "not_found"
        refused_workflow = intruder.get(f"/api/v1/workflows/{workflow_id}/events")
        assert refused_workflow.status_code == 404 and refused_workflow.json()["code"] == "not_found"
        wait_for_status(api, run_id, {"completed"})
        # A heartbeat after the run's end: everything before it on this stream was sent already.
        before_heartbeat = []
        for message in intruder_messages:
            if message.comment == "heartbeat":
                break
            before_heartbeat.append(message)
        assert before_heartbeat == []
    refused_resume = intruder.get(f"/api/v1/runs/{run_id}/events", headers={"Last-Event-ID": "0"})
    assert refused_resume.status_code == 404 and refused_resume.json()["code"] == "not_found"
    # Nothing of the run but the id the intruder asked with (the problem's `instance` is that path).
    assert run_id not in refused_resume.json()["detail"] and "event:" not in refused_resume.text


# --- what the builder reads besides the streams ----------------------------------------------


def test_the_workflow_list_carries_trigger_type_and_run_statistics_from_one_query(api: httpx.Client):
    tag = uuid.uuid4().hex[:8]
    counted = create_workflow(api, paused_chain(0.2), name=f"stats {tag} counted")
    quiet = create_workflow(api, chain(node("done", "end"), kind="webhook"), name=f"stats {tag} quiet")
    completed = start_run(api, counted)
    wait_for_status(api, completed, {"completed"})
    api.put(
        f"/api/v1/workflows/{counted}", json={"name": f"stats {tag} counted", "definition": paused_chain(60)}
    )
    cancelled = api.post(f"/api/v1/workflows/{counted}/runs", json={"input": {"n": 1}, "version": 2}).json()[
        "run_id"
    ]
    wait_for_status(api, cancelled, {"running"})
    assert api.post(f"/api/v1/runs/{cancelled}/cancel").status_code == 202
    last = wait_for_status(api, cancelled, {"cancelled"})

    listed = api.get("/api/v1/workflows", params={"name": tag}).json()["items"]
    by_id = {w["id"]: w for w in listed}
    assert set(by_id) == {counted, quiet}
    stats = by_id[counted]
    assert (stats["trigger_type"], stats["run_count"], stats["success_rate"], stats["last_run_status"]) == (
        "manual",
        2,
        0.5,
        "cancelled",
    )
    assert datetime.fromisoformat(stats["last_run_at"]) == datetime.fromisoformat(last["started_at"])
    assert (by_id[quiet]["trigger_type"], by_id[quiet]["run_count"]) == ("webhook", 0)
    assert [by_id[quiet][k] for k in ("success_rate", "last_run_at", "last_run_status")] == [None, None, None]
    single = api.get(f"/api/v1/workflows/{counted}").json()
    assert {k: single[k] for k in stats} == stats


def test_duplicating_a_workflow_makes_a_draft_from_its_newest_definition(
    api: httpx.Client, intruder: httpx.Client
):
    source = create_workflow(api, paused_chain(1), name="Original")
    newest = paused_chain(2)
    assert (
        api.put(f"/api/v1/workflows/{source}", json={"name": "Original", "definition": newest}).status_code
        == 200
    )
    assert api.post(f"/api/v1/workflows/{source}/activate").status_code == 200

    copied = api.post(f"/api/v1/workflows/{source}/duplicate")
    assert copied.status_code == 201, copied.text
    copy = copied.json()
    assert copy["id"] != source
    assert (
        copy["name"],
        copy["status"],
        copy["latest_version"],
        copy["active_version"],
        copy["run_count"],
    ) == ("Original (copy)", "draft", 1, None, 0)
    original = api.get(f"/api/v1/workflows/{source}/versions/2").json()["definition"]
    assert copy["definition"] == original
    assert [v["version"] for v in api.get(f"/api/v1/workflows/{copy['id']}/versions").json()] == [1]
    assert api.get(f"/api/v1/workflows/{source}").json()["status"] == "active", "the source is untouched"

    long_name = create_workflow(api, chain(node("done", "end")), name="n" * 200)
    assert api.post(f"/api/v1/workflows/{long_name}/duplicate").json()["name"] == "n" * 193 + " (copy)"
    assert intruder.post(f"/api/v1/workflows/{source}/duplicate").status_code == 404


def test_activating_an_older_version_pins_it_and_an_unknown_one_is_404_naming_the_field(api: httpx.Client):
    workflow_id = create_workflow(api, paused_chain(1))
    api.put(f"/api/v1/workflows/{workflow_id}", json={"name": "live", "definition": paused_chain(2)})
    api.put(f"/api/v1/workflows/{workflow_id}", json={"name": "live", "definition": paused_chain(3)})

    older = api.post(f"/api/v1/workflows/{workflow_id}/activate", json={"version": 1})
    assert (older.status_code, older.json()["active_version"], older.json()["status"]) == (200, 1, "active")
    versions = api.get(f"/api/v1/workflows/{workflow_id}/versions").json()
    assert [(v["version"], v["active"]) for v in versions] == [(3, False), (2, False), (1, True)]
    run_id = start_run(api, workflow_id)
    assert wait_for_status(api, run_id, {"running", "completed"})["workflow_version"] == 1

    unknown = api.post(f"/api/v1/workflows/{workflow_id}/activate", json={"version": 9})
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "unknown_version"
    assert unknown.json()["errors"] == [{"pointer": "/body/version", "detail": "no such version"}]
    assert api.get(f"/api/v1/workflows/{workflow_id}").json()["active_version"] == 1, (
        "a refused change changes nothing"
    )
    zero = api.post(f"/api/v1/workflows/{workflow_id}/activate", json={"version": 0})
    assert zero.status_code == 422 and zero.json()["errors"][0]["pointer"] == "/body/version"

    newest = api.post(f"/api/v1/workflows/{workflow_id}/activate")
    assert (newest.status_code, newest.json()["active_version"]) == (200, 3)


def test_runs_filter_by_workflow_and_status_and_show_each_nodes_execution(api: httpx.Client):
    workflow_id = create_workflow(api, paused_chain(0.2))
    other = create_workflow(api, paused_chain(0.2))
    done = start_run(api, workflow_id, {"n": 5})
    start_run(api, other)
    run = wait_for_status(api, done, {"completed"})

    listed = api.get("/api/v1/runs", params={"workflow_id": workflow_id, "status": "completed"}).json()[
        "items"
    ]
    assert [r["run_id"] for r in listed] == [done]
    assert (
        api.get("/api/v1/runs", params={"workflow_id": workflow_id, "status": "failed"}).json()["items"] == []
    )
    bad = api.get("/api/v1/runs", params={"status": "sideways"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/query/status"

    nodes = {n["node_id"]: n for n in run["nodes"]}
    assert set(nodes) == {"start", "before", "pause", "after", "done"}
    after = nodes["after"]
    assert (after["status"], after["attempts"], after["error"]) == ("succeeded", 1, None)
    assert after["output"] == {"m": 5}
    assert after["started_at"] is not None and after["finished_at"] >= after["started_at"]
    assert after["duration_ms"] is not None
    assert nodes["pause"]["finished_at"] > nodes["before"]["finished_at"]


# --- stopping --------------------------------------------------------------------------------


def test_stopping_the_gateway_ends_open_streams_at_once_instead_of_waiting_out_the_grace_period(
    system: System,
):
    system.start(("gateway",))
    gateway = system.url("gateway")
    account = provision_tenant(system.infra, system.namespace, f"stop{uuid.uuid4().hex[:6]}")
    with signed_in(gateway, account) as signed:
        workflow_id = create_workflow(signed, paused_chain(1))
        with stream(signed, f"/api/v1/workflows/{workflow_id}/events") as response:
            messages = sse(response)
            assert next(messages).comment == "following workflow"
            began = time.monotonic()
            exit_code = system.stop("gateway")
            stopped_after = time.monotonic() - began
            assert [m.comment for m in messages] == ["server stopping: reconnect"]
    assert exit_code == 0
    assert stopped_after < 8, "uvicorn's graceful shutdown gives open responses 10 s"


def live_events_read(gateway: str) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    return float(re.search(r"^millrace_live_events_total (\S+)$", text, re.MULTILINE)[1])


def test_the_feed_parses_only_the_events_an_open_stream_follows(api: httpx.Client, gateway: str):
    deadline = time.monotonic() + 10
    while any(live_streams(gateway).values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(live_streams(gateway).values()), "another test's stream is still open"
    before = live_events_read(gateway)
    followed = start_run(api, create_workflow(api, paused_chain(2.0)))
    with stream(api, f"/api/v1/runs/{followed}/events") as response:
        messages = sse(response)
        assert next(messages).comment == "following run"
        assert feed_reading(gateway) == 1, "the feed reads while a stream is open"
        # Another run, start to end, while the feed reads: its events are passed over unparsed.
        unwatched = start_run(api, create_workflow(api, paused_chain(0.2)))
        wait_for_status(api, unwatched, {"completed"})
        events = [m for m in messages if m.comment is None]
    assert events[-1].event == "run.completed"
    parsed = live_events_read(gateway) - before
    # The followed run's events that came live, at most all of them; the other run's would add its
    # every event on top.
    assert 0 < parsed <= len(events), f"{parsed} events parsed; the followed run has {len(events)}"


def feed_reading(gateway: str) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    return float(re.search(r"^millrace_live_feed_reading (\S+)$", text, re.MULTILINE)[1])


def paused_feed(gateway: str) -> bool:
    """Whether the feed pauses within its pause time (and the time for open streams to close)."""
    deadline = time.monotonic() + 10 + PAUSE_SECONDS * 3
    while feed_reading(gateway) != 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    return feed_reading(gateway) == 0


def test_the_feed_pauses_while_no_stream_is_open_and_a_new_stream_misses_nothing(
    api: httpx.Client, gateway: str
):
    """Nobody watching for MILLRACE_LIVE_FEED_PAUSE_SECONDS: the feed stops reading runs.events. The
    next stream starts it again from the end before reading the run log, so a run that went on while
    it was paused, and one that starts after, are each streamed whole, in order, to their end."""
    assert paused_feed(gateway), "no stream open: the feed should have paused"
    # A run that goes on while the feed is paused, followed from its middle.
    during = start_run(api, create_workflow(api, paused_chain(2.0)))
    time.sleep(0.5)
    assert feed_reading(gateway) == 0
    with stream(api, f"/api/v1/runs/{during}/events") as response:
        messages = sse(response)
        assert next(messages).comment == "following run"
        assert feed_reading(gateway) == 1, "an open stream starts the feed again"
        events = [m for m in messages if m.comment is None]
        ended = datetime.now().astimezone()
    seqs = [int(m.id) for m in events]
    assert seqs == list(range(1, len(seqs) + 1)), seqs
    assert events[-1].event == "run.completed"
    # Its end came through the feed, not from the log at the next heartbeat (3 s): the feed was
    # positioned before the stream read the log.
    finished = datetime.fromisoformat(wait_for_status(api, during, {"completed"})["finished_at"])
    assert (ended - finished).total_seconds() < 1.0, (ended, finished)
    # Paused again, then a workflow stream (no log behind it) sees a run started after it opened.
    assert paused_feed(gateway)
    workflow = create_workflow(api, paused_chain(0.2))
    with stream(api, f"/api/v1/workflows/{workflow}/events") as response:
        messages = sse(response)
        assert next(messages).comment == "following workflow"
        after = start_run(api, workflow)
        seen = events_through(messages, "run.completed")
    assert {m.id.split("/")[0] for m in seen} == {str(after)}
    assert [int(m.id.split("/")[1]) for m in seen] == list(range(1, len(seen) + 1))


def test_a_gateway_just_started_does_not_read_the_feed_until_a_stream_opens(
    infra: Infra, module_namespace: str, owner: Account
):
    """A gateway that has just started has no stream: its feed waits paused from the start, not for
    the pause time (here five minutes) with every run event read for nobody."""
    fresh = System(infra, module_namespace, label="-fresh")
    try:
        fresh.start(("gateway",), extra_env={"MILLRACE_LIVE_FEED_PAUSE_SECONDS": "300"})
        url = fresh.url("gateway")
        assert feed_reading(url) == 0
        with signed_in(url, owner) as fresh_api:
            workflow = create_workflow(fresh_api, paused_chain(0.2))
            with stream(fresh_api, f"/api/v1/workflows/{workflow}/events") as response:
                assert next(sse(response)).comment == "following workflow"
                assert feed_reading(url) == 1, "an open stream starts the feed"
    finally:
        fresh.stop_all()
