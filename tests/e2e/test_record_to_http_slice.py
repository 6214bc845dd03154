"""The walking skeleton end to end: every service a real process, real Kafka, real PostgreSQL, real HTTP.

A record created through the API becomes a record event; the trigger service asks for a run; the
orchestrator logs it and sends the HTTP node to a runner; the runner calls a local server; the run
completes and the API shows the node log."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from millrace_common.contracts.messages.envelope import DeadLetter
from millrace_common.contracts.messages.records import RecordCreated
from millrace_common.contracts.topics import RECORDS_EVENTS, Namespace

from tests.support.api import provision_tenant, signed_in
from tests.support.kafka import kafka_client
from tests.support.network import grant_loopback
from tests.support.processes import System

pytestmark = pytest.mark.e2e


class Receiver:
    """A loopback HTTP server that records what the HTTP node sent it."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                answer = json.dumps({"received": True, "path": self.path}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    yield running
    running.server.shutdown()
    running.server.server_close()


def slice_definition(pipeline: str, url: str) -> dict:
    return {
        "nodes": [
            {
                "id": "lead",
                "type": "trigger",
                "position": {"x": 0, "y": 0},
                "data": {"name": "New lead", "kind": "record_created", "pipeline_ids": [pipeline]},
            },
            {
                "id": "notify",
                "type": "http_request",
                "position": {"x": 0, "y": 120},
                "data": {
                    "name": "Notify CRM",
                    "method": "POST",
                    "url": f"{url}/hooks/lead",
                    "body": {"hello": "lead"},
                },
            },
            {"id": "done", "type": "end", "position": {"x": 0, "y": 240}, "data": {"name": "Done"}},
        ],
        "edges": [
            {"id": "e1", "source": "lead", "target": "notify"},
            {"id": "e2", "source": "notify", "target": "done"},
        ],
    }


def wait_for_run(api: httpx.Client, workflow_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api.get("/api/v1/runs", params={"workflow_id": workflow_id}).json()["items"]
        if found and found[0]["status"] != "running":
            return api.get(f"/api/v1/runs/{found[0]['run_id']}").json()
        time.sleep(0.2)
    raise AssertionError(f"no finished run of workflow {workflow_id} within {timeout} s")


def create_active_workflow(api: httpx.Client, pipeline: str, url: str) -> str:
    assert api.post("/api/v1/pipelines", json={"id": pipeline, "name": pipeline.title()}).status_code == 201
    created = api.post(
        "/api/v1/workflows", json={"name": "Lead hook", "definition": slice_definition(pipeline, url)}
    )
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    activated = api.post(f"/api/v1/workflows/{workflow_id}/activate", json={})
    assert activated.status_code == 200, activated.text
    assert activated.json()["status"] == "active"
    return workflow_id


def api_for(system: System, tenant: str) -> httpx.Client:
    account = provision_tenant(system.infra, system.namespace, tenant)
    grant_loopback(system.infra, system.namespace, tenant)
    return signed_in(system.url("gateway"), account)


def test_a_created_record_runs_the_http_node_and_completes(
    running_system: System, receiver: Receiver, tenant: str
):
    system = running_system
    api = api_for(system, tenant)
    workflow_id = create_active_workflow(api, "leads", receiver.url)

    record = api.post("/api/v1/pipelines/leads/records", json={"data": {"email": "ada@example.com"}})
    assert record.status_code == 201, record.text

    run = wait_for_run(api, workflow_id)
    assert run["status"] == "completed", run
    nodes = {n["node_id"]: n for n in run["nodes"]}
    assert [nodes[n]["status"] for n in ("lead", "notify", "done")] == ["succeeded"] * 3
    notify = nodes["notify"]
    assert notify["input"]["url"] == f"{receiver.url}/hooks/lead"
    assert notify["output"]["status"] == 200
    assert notify["output"]["body"] == {"received": True, "path": "/hooks/lead"}
    assert notify["attempts"] == 1 and notify["duration_ms"] > 0
    assert nodes["lead"]["output"]["data"]["record"]["data"] == {"email": "ada@example.com"}

    (request,) = receiver.requests
    assert request["body"] == {"hello": "lead"}
    assert request["headers"]["Idempotency-Key"] == f"{run['run_id']}:notify:1"

    # Another tenant sees nothing of it.
    other = api_for(system, "someone-else")
    assert other.get(f"/api/v1/runs/{run['run_id']}").status_code == 404
    assert other.get(f"/api/v1/workflows/{workflow_id}").status_code == 404


def test_a_failing_http_target_fails_the_run_with_the_reason(running_system: System, tenant: str):
    api = api_for(running_system, tenant)
    definition = slice_definition("leads", "http://127.0.0.1:9")  # nothing listens on port 9
    definition["nodes"][1]["data"]["retry"] = {"max_attempts": 3, "backoff_seconds": 0.2}
    assert api.post("/api/v1/pipelines", json={"id": "leads", "name": "Leads"}).status_code == 201
    workflow_id = api.post("/api/v1/workflows", json={"name": "retrying", "definition": definition}).json()[
        "id"
    ]
    assert api.post(f"/api/v1/workflows/{workflow_id}/activate", json={}).status_code == 200

    api.post("/api/v1/pipelines/leads/records", json={"data": {"n": 1}})

    run = wait_for_run(api, workflow_id)
    assert run["status"] == "failed"
    assert "notify" in run["error"]
    notify = next(n for n in run["nodes"] if n["node_id"] == "notify")
    assert notify["status"] == "failed" and notify["error"]["type"] == "connection"
    assert notify["attempts"] == 3, "a retryable connection error is retried by the node's policy"


async def test_a_malformed_record_event_is_dead_lettered_and_the_next_one_still_runs(
    running_system: System, receiver: Receiver, tenant: str
):
    system = running_system
    api = api_for(system, tenant)
    workflow_id = create_active_workflow(api, "deals", receiver.url)
    topics = Namespace(system.namespace)
    good = RecordCreated(tenant_id=tenant, pipeline_id="deals", record_id="d-1", data={"amount": 5})

    producer = AIOKafkaProducer(**kafka_client(system.infra.kafka_bootstrap))
    await producer.start()
    try:
        await producer.send_and_wait(topics.topic(RECORDS_EVENTS), b"{not json", key=b"d-0")
        await producer.send_and_wait(
            topics.topic(RECORDS_EVENTS), b'{"type": "record.created", "tenant_id": "x"}', key=b"d-0"
        )
        await producer.send_and_wait(topics.topic(RECORDS_EVENTS), good.to_bytes(), key=b"d-1")
    finally:
        await producer.stop()

    run = wait_for_run(api, workflow_id)
    assert run["status"] == "completed"
    assert run["trigger"]["data"]["record"]["id"] == "d-1"

    consumer = AIOKafkaConsumer(
        topics.topic(RECORDS_EVENTS.dlq),
        **kafka_client(system.infra.kafka_bootstrap),
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000, max_records=10)
        letters = [DeadLetter.model_validate_json(r.value) for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    assert [letter.raw_value for letter in letters] == [
        "{not json",
        '{"type": "record.created", "tenant_id": "x"}',
    ]
    assert "json" in letters[0].reason.lower()
    assert "pipeline_id" in letters[1].reason and "record_id" in letters[1].reason
    assert all(letter.source_topic == topics.topic(RECORDS_EVENTS) for letter in letters)


def test_every_service_stops_cleanly_on_sigterm(running_system: System):
    """Last in the module: SIGTERM drains each service and it exits 0."""
    assert running_system.stop_all() == {
        name: 0 for name in ("gateway", "trigger", "orchestrator", "node-runner", "approval")
    }
