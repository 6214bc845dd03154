"""Runs that wait on the world outside them, through the real gateway and orchestrator over Kafka and
PostgreSQL: ``wait_for_event`` resumed by a signal (``POST /api/v1/runs/{id}/signals/{name}``), passed
over by its condition, ended by its timeout, given a signal that came early (kept only when the node
asks), and still waiting after its orchestrator is killed with SIGKILL; resumed by a record event (a change
made through the records API, matched by the trigger service) whose condition holds, and given one
that came early when it asks; ``respond_to_webhook``
answering the webhook call in time (each of two gateway instances answering the calls it holds), a
slow run answered 202, and a respond node in a run no webhook
started failing with ``not_a_webhook_run``. The signal endpoint's refusals: a finished run (409), an
unknown or another tenant's run (404), a bad name or body (422)."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.api import provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.integration


def node(node_id: str, node_type: str, **data: object) -> dict:
    return {"id": node_id, "type": node_type, "position": {"x": 0, "y": 0}, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    built = {"id": f"{source}->{target}", "source": source, "target": target}
    return built | ({"sourceHandle": handle} if handle else {})


@dataclass
class Waits:
    system: System
    api: httpx.Client
    other: httpx.Client

    def workflow(self, nodes: list[dict], edges: list[dict], **settings: object) -> str:
        definition: dict = {"nodes": nodes, "edges": edges}
        if settings:
            definition["settings"] = settings
        created = self.api.post(
            "/api/v1/workflows", json={"name": f"w-{uuid.uuid4().hex[:6]}", "definition": definition}
        )
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        activated = self.api.post(f"/api/v1/workflows/{workflow_id}/activate", json={})
        assert activated.status_code == 200, activated.text
        return workflow_id

    def start(self, workflow_id: str, data: dict | None = None) -> str:
        answer = self.api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": data or {}})
        assert answer.status_code == 202, answer.text
        return answer.json()["run_id"]

    def run(self, run_id: str) -> dict:
        answer = self.api.get(f"/api/v1/runs/{run_id}")
        return answer.json() if answer.status_code == 200 else {}

    def until(self, run_id: str, check, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            run = self.run(run_id)
            if run and check(run):
                return run
            assert time.monotonic() < deadline, f"run {run_id} never got there: {run}"
            time.sleep(0.1)

    def finished(self, run_id: str, timeout: float = 30) -> dict:
        return self.until(run_id, lambda r: r["status"] not in ("running", "paused"), timeout)

    def waiting(self, run_id: str, node_id: str = "wait") -> dict:
        return self.until(run_id, lambda r: node_status(r, node_id) == "scheduled")

    def signal(
        self, run_id: str, name: str, payload: object, client: httpx.Client | None = None
    ) -> httpx.Response:
        return (client or self.api).post(f"/api/v1/runs/{run_id}/signals/{name}", json=payload)

    def hook_url(self, workflow_id: str) -> str:
        answer = self.api.get(f"/api/v1/workflows/{workflow_id}/webhook")
        assert answer.status_code == 200, answer.text
        return f"{self.system.url('gateway')}/hooks/{answer.json()['url'].rsplit('/', 1)[1]}"


def node_status(run: dict, node_id: str) -> str | None:
    return next((n["status"] for n in run["nodes"] if n["node_id"] == node_id), None)


def node_of(run: dict, node_id: str) -> dict:
    return next(n for n in run["nodes"] if n["node_id"] == node_id)


@pytest.fixture(scope="module")
def waits(infra: Infra, module_namespace: str) -> Iterator[Waits]:
    system = System(infra, module_namespace)
    system.start(("gateway", "orchestrator", "trigger"), ready_timeout=240)
    try:
        base = system.url("gateway")
        api = signed_in(base, provision_tenant(infra, module_namespace, f"tenant-{uuid.uuid4().hex[:8]}"))
        other = signed_in(base, provision_tenant(infra, module_namespace, f"tenant-{uuid.uuid4().hex[:8]}"))
        yield Waits(system, api, other)
    finally:
        system.stop_all()


def signal_workflow(waits: Waits, *, before: dict | None = None, **wait: object) -> str:
    """manual -> [before] -> wait for the signal "go" -> got (event) | late (timeout)."""
    first = before or node("first", "set", variables={"step": 1})
    return waits.workflow(
        [
            node("start", "trigger", kind="manual"),
            first,
            node("wait", "wait_for_event", event="signal", signal_name="go", **{"wait_seconds": 60, **wait}),
            node("got", "end", output={"got": "{{ nodes.wait.output.payload }}"}),
            node("late", "end", output={"late": True}),
        ],
        [
            edge("start", first["id"]),
            edge(first["id"], "wait"),
            edge("wait", "got", "event"),
            edge("wait", "late", "timeout"),
        ],
    )


def test_a_signal_resumes_the_waiting_run_with_its_body_as_the_output(waits: Waits):
    run_id = waits.start(signal_workflow(waits))
    waits.waiting(run_id)
    answer = waits.signal(run_id, "go", {"amount": 12})
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"run_id": run_id, "accepted": "signal:go"}
    run = waits.finished(run_id)
    assert run["status"] == "completed" and run["final_output"] == {"got": {"amount": 12}}
    assert node_of(run, "wait")["output"]["payload"] == {"amount": 12}
    assert node_status(run, "late") == "skipped"


def test_a_condition_passes_over_signals_it_does_not_hold_for(waits: Waits):
    condition = {"field": "payload.amount", "operator": "greater_than", "value": 10}
    run_id = waits.start(signal_workflow(waits, condition=condition))
    waits.waiting(run_id)
    assert waits.signal(run_id, "go", {"amount": 3}).status_code == 202
    time.sleep(1.0)
    assert node_status(waits.run(run_id), "wait") == "scheduled"
    assert waits.signal(run_id, "go", {"amount": 30}).status_code == 202
    assert waits.finished(run_id)["final_output"] == {"got": {"amount": 30}}


def test_the_wait_ends_along_the_timeout_handle(waits: Waits):
    run_id = waits.start(signal_workflow(waits, wait_seconds=1))
    run = waits.finished(run_id)
    assert run["status"] == "completed" and run["final_output"] == {"late": True}
    assert node_of(run, "wait")["output"]["source"] == "timeout"


def test_an_early_signal_is_kept_when_the_node_accepts_earlier_events(waits: Waits):
    delay = node("first", "wait_delay", duration_seconds=2)
    run_id = waits.start(signal_workflow(waits, before=delay, accept_earlier_events=True, wait_seconds=20))
    waits.until(run_id, lambda r: node_status(r, "first") == "scheduled")
    assert waits.signal(run_id, "go", {"early": True}).status_code == 202
    run = waits.finished(run_id)
    assert run["final_output"] == {"got": {"early": True}}


def test_an_early_signal_is_dropped_when_the_node_does_not_accept_earlier_events(waits: Waits):
    delay = node("first", "wait_delay", duration_seconds=2)
    run_id = waits.start(signal_workflow(waits, before=delay, wait_seconds=3))
    waits.until(run_id, lambda r: node_status(r, "first") == "scheduled")
    assert waits.signal(run_id, "go", {"early": True}).status_code == 202
    run = waits.finished(run_id)
    assert run["final_output"] == {"late": True}


def test_a_signal_to_a_finished_unknown_or_foreign_run_or_with_a_bad_name_or_body_is_refused(waits: Waits):
    run_id = waits.start(signal_workflow(waits, wait_seconds=1))
    waits.finished(run_id)
    finished = waits.signal(run_id, "go", {})
    assert finished.status_code == 409, finished.text
    assert finished.headers["content-type"].startswith("application/problem+json")
    unknown = waits.signal(str(uuid.uuid4()), "go", {})
    assert unknown.status_code == 404, unknown.text

    waiting = waits.start(signal_workflow(waits))
    waits.waiting(waiting)
    foreign = waits.signal(waiting, "go", {}, client=waits.other)
    assert foreign.status_code == 404, foreign.text
    bad_name = waits.signal(waiting, "no spaces", {})
    assert bad_name.status_code == 422, bad_name.text
    bad_body = waits.api.post(
        f"/api/v1/runs/{waiting}/signals/go",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert bad_body.status_code == 422, bad_body.text
    assert node_status(waits.run(waiting), "wait") == "scheduled"
    assert waits.signal(waiting, "go", {"at": "last"}).status_code == 202
    assert waits.finished(waiting)["final_output"] == {"got": {"at": "last"}}


def respond_workflow(waits: Waits, *, before: dict | None = None, wait_seconds: float = 10) -> str:
    first = before or node("first", "set", variables={"order": "{{ trigger.webhook.body.order }}"})
    return waits.workflow(
        [
            node("start", "trigger", kind="webhook"),
            first,
            node(
                "answer",
                "respond_to_webhook",
                status=201,
                headers={"X-Order": "{{ trigger.webhook.body.order }}"},
                body={"accepted": "{{ trigger.webhook.body.order }}"},
            ),
            node("done", "end"),
        ],
        [edge("start", first["id"]), edge(first["id"], "answer"), edge("answer", "done")],
        webhook_response_wait_seconds=wait_seconds,
    )


def test_a_webhook_call_is_answered_with_what_the_respond_node_sets(waits: Waits):
    url = waits.hook_url(respond_workflow(waits))
    answer = httpx.post(url, json={"order": "A-7"}, timeout=20)
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"accepted": "A-7"}
    assert answer.headers["x-order"] == "A-7"
    run = waits.finished(answer.headers["x-millrace-run-id"])
    assert node_of(run, "answer")["output"] == {
        "status": 201,
        "headers": {"X-Order": "A-7"},
        "body": {"accepted": "A-7"},
    }


def test_with_two_gateways_each_answers_the_calls_it_holds(waits: Waits):
    system = waits.system
    second = System(
        system.infra,
        system.namespace,
        jwt_secret=system.jwt_secret,
        encryption_key=system.encryption_key,
        label="-b",
    )
    second.start(("gateway",), ready_timeout=240)
    try:
        path = urlsplit(waits.hook_url(respond_workflow(waits))).path
        for n, base in enumerate([second.url("gateway"), system.url("gateway")] * 3):
            answer = httpx.post(f"{base}{path}", json={"order": f"D-{n}"}, timeout=20)
            assert answer.status_code == 201, (base, answer.text)
            assert answer.json() == {"accepted": f"D-{n}"}
    finally:
        second.stop_all()


def test_a_run_too_slow_to_respond_gets_the_usual_202_with_its_run_id(waits: Waits):
    slow = node("first", "wait_delay", duration_seconds=3)
    url = waits.hook_url(respond_workflow(waits, before=slow, wait_seconds=0.5))
    began = time.monotonic()
    answer = httpx.post(url, json={"order": "B-1"}, timeout=20)
    took = time.monotonic() - began
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "started" and took < 2.5
    run = waits.finished(answer.json()["run_id"])
    assert run["status"] == "completed" and node_status(run, "answer") == "succeeded"


def test_a_respond_node_in_a_run_no_webhook_started_fails_with_not_a_webhook_run(waits: Waits):
    run_id = waits.start(respond_workflow(waits), {"webhook": {"body": {"order": "C-3"}}})
    run = waits.finished(run_id)
    assert run["status"] == "failed"
    assert node_of(run, "answer")["error"]["type"] == "not_a_webhook_run"


@pytest.mark.timeout(180)
def test_a_waiting_run_survives_a_kill_of_its_orchestrator_and_resumes_on_a_signal(waits: Waits):
    run_id = waits.start(signal_workflow(waits, wait_seconds=600))
    waits.waiting(run_id)
    exit_code = waits.system.stop("orchestrator", signal.SIGKILL)
    assert exit_code == -signal.SIGKILL
    # Sent while no orchestrator runs: the signal waits on runs.commands.
    assert waits.signal(run_id, "go", {"after": "kill"}).status_code == 202
    waits.system.start(("orchestrator",), ready_timeout=240)
    run = waits.finished(run_id, timeout=60)
    assert run["status"] == "completed" and run["final_output"] == {"got": {"after": "kill"}}


def record_workflow(waits: Waits, pipeline: str, *, before: dict | None = None, **wait: object) -> str:
    first = before or node("first", "set", variables={"step": 1})
    condition = {"field": "payload.record.data.status", "operator": "equals", "value": "paid"}
    return waits.workflow(
        [
            node("start", "trigger", kind="manual"),
            first,
            node(
                "wait",
                "wait_for_event",
                event="record",
                pipeline_id=pipeline,
                record_id="{{ trigger.record_id }}",
                condition=condition,
                **{"wait_seconds": 60, **wait},
            ),
            node("got", "end", output={"record": "{{ nodes.wait.output.payload.record }}"}),
            node("late", "end", output={"late": True}),
        ],
        [
            edge("start", first["id"]),
            edge(first["id"], "wait"),
            edge("wait", "got", "event"),
            edge("wait", "late", "timeout"),
        ],
    )


def order(waits: Waits) -> tuple[str, str]:
    pipeline = f"orders{uuid.uuid4().hex[:6]}"
    created = waits.api.post("/api/v1/pipelines", json={"id": pipeline, "name": pipeline})
    assert created.status_code == 201, created.text
    record = waits.api.post(f"/api/v1/pipelines/{pipeline}/records", json={"data": {"status": "open"}})
    assert record.status_code == 201, record.text
    return pipeline, record.json()["id"]


def set_status(waits: Waits, pipeline: str, record_id: str, status: str) -> None:
    changed = waits.api.patch(
        f"/api/v1/pipelines/{pipeline}/records/{record_id}", json={"data": {"status": status}}
    )
    assert changed.status_code == 200, changed.text


def test_a_record_event_whose_condition_holds_resumes_the_run_waiting_for_that_record(waits: Waits):
    pipeline, record_id = order(waits)
    run_id = waits.start(record_workflow(waits, pipeline), {"record_id": record_id})
    waits.waiting(run_id)
    set_status(waits, pipeline, record_id, "shipped")  # the condition does not hold
    time.sleep(1.5)
    assert node_status(waits.run(run_id), "wait") == "scheduled"
    set_status(waits, pipeline, record_id, "paid")
    run = waits.finished(run_id)
    assert run["status"] == "completed"
    record = run["final_output"]["record"]
    assert (record["id"], record["pipeline_id"], record["data"]["status"]) == (record_id, pipeline, "paid")
    assert node_of(run, "wait")["output"]["name"] == "record.updated"


def test_an_early_record_event_is_kept_when_the_node_accepts_earlier_events(waits: Waits):
    pipeline, record_id = order(waits)
    delay = node("first", "wait_delay", duration_seconds=3)
    workflow = record_workflow(waits, pipeline, before=delay, accept_earlier_events=True, wait_seconds=20)
    run_id = waits.start(workflow, {"record_id": record_id})
    waits.until(run_id, lambda r: node_status(r, "first") == "scheduled")
    set_status(waits, pipeline, record_id, "paid")
    run = waits.finished(run_id)
    assert run["final_output"]["record"]["data"]["status"] == "paid"


def test_an_early_record_event_is_dropped_when_the_node_does_not_accept_earlier_events(waits: Waits):
    pipeline, record_id = order(waits)
    delay = node("first", "wait_delay", duration_seconds=3)
    run_id = waits.start(
        record_workflow(waits, pipeline, before=delay, wait_seconds=3), {"record_id": record_id}
    )
    waits.until(run_id, lambda r: node_status(r, "first") == "scheduled")
    set_status(waits, pipeline, record_id, "paid")
    run = waits.finished(run_id)
    assert run["final_output"] == {"late": True}
