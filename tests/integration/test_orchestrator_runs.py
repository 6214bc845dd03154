"""The orchestrator through its real shell (Kafka, PostgreSQL, the outbox, durable timers):
control nodes, for_each, approvals, throttling, and a delay that outlives an orchestrator restart."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from millrace_common.contracts.messages.run_commands import ResumeRun
from millrace_common.contracts.topics import RUNS_COMMANDS, Namespace

from tests.support.api import provision_tenant, signed_in
from tests.support.kafka import kafka_client
from tests.support.processes import System

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(running_system: System) -> httpx.Client:
    account = provision_tenant(running_system.infra, running_system.namespace, f"orch{uuid.uuid4().hex[:6]}")
    return signed_in(running_system.url("gateway"), account)


def node(node_id: str, node_type: str, parent: str | None = None, **data) -> dict:
    raw = {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}
    return {**raw, "parentId": parent} if parent else raw


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def start_run(
    api: httpx.Client, nodes: list[dict], edges: list[dict], data: dict | None = None, **settings
) -> str:
    definition = {
        "nodes": [node("start", "trigger", kind="manual"), *nodes],
        "edges": edges,
        "settings": settings,
    }
    created = api.post("/api/v1/workflows", json={"name": "orchestration", "definition": definition})
    assert created.status_code == 201, created.text
    started = api.post(f"/api/v1/workflows/{created.json()['id']}/runs", json={"input": data or {}})
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def finished(api: httpx.Client, run_id: str, timeout: float = 45) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        run = answer.json() if answer.status_code == 200 else {}  # a 404 problem has a status too
        if run.get("status") not in (None, "running"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still running: {run}")


def statuses(run: dict) -> dict[str, str]:
    return {n["node_id"]: n["status"] for n in run.get("nodes", [])}


def test_branches_switches_variables_and_joins_run_through_the_real_shell(api: httpx.Client):
    run_id = start_run(
        api,
        [
            node("vars", "set", variables={"total": "{{ trigger.qty * trigger.price }}"}),
            node(
                "big",
                "condition",
                condition={"field": "vars.total", "operator": "greater_than", "value": 100},
            ),
            node(
                "tier",
                "switch",
                cases=[
                    {
                        "name": "gold",
                        "condition": {"field": "vars.total", "operator": "greater_than", "value": 1000},
                    }
                ],
            ),
            node("gold", "set", variables={"tier": "gold"}),
            node("silver", "set", variables={"tier": "silver"}),
            node("small", "set", variables={"tier": "none"}),
            node("join", "end", output={"tier": "{{ vars.tier }}", "total": "{{ vars.total }}"}),
        ],
        [
            edge("start", "vars"),
            edge("vars", "big"),
            edge("big", "tier", "true"),
            edge("big", "small", "false"),
            edge("tier", "gold", "case:gold"),
            edge("tier", "silver", "default"),
            edge("gold", "join"),
            edge("silver", "join"),
            edge("small", "join"),
        ],
        {"qty": 3, "price": 70},
    )
    run = finished(api, run_id)
    assert run["status"] == "completed"
    assert statuses(run) == {
        "start": "succeeded",
        "vars": "succeeded",
        "big": "succeeded",
        "tier": "succeeded",
        "gold": "skipped",
        "silver": "succeeded",
        "small": "skipped",
        "join": "succeeded",
    }
    join = next(n for n in run["nodes"] if n["node_id"] == "join")
    assert join["output"] == {"tier": "silver", "total": 210}


def test_a_for_each_runs_its_body_per_item_and_collects_results_in_order(api: httpx.Client):
    run_id = start_run(
        api,
        [
            node("each", "for_each", items="{{ trigger.names }}", max_concurrency=4),
            node("greet", "set", parent="each", variables={"greeting": "hello {{ item }} #{{ index }}"}),
            node("done", "end", output={"results": "{{ nodes.each.output.results }}"}),
        ],
        [edge("start", "each"), edge("each", "done", "done")],
        {"names": [f"n{i}" for i in range(25)]},
    )
    run = finished(api, run_id)
    assert run["status"] == "completed"
    results = next(n for n in run["nodes"] if n["node_id"] == "done")["output"]["results"]
    assert [r["greeting"] for r in results] == [f"hello n{i} #{i}" for i in range(25)]


def test_runs_beyond_the_hourly_limit_are_throttled_with_the_reason(api: httpx.Client):
    definition = {
        "nodes": [node("start", "trigger", kind="manual"), node("done", "end")],
        "edges": [edge("start", "done")],
        "settings": {"max_executions_per_hour": 2},
    }
    workflow_id = api.post("/api/v1/workflows", json={"name": "limited", "definition": definition}).json()[
        "id"
    ]
    run_ids = []
    for _ in range(3):
        run_ids.append(api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": {}}).json()["run_id"])
        finished(api, run_ids[-1])
    runs = [api.get(f"/api/v1/runs/{r}").json() for r in run_ids]
    assert [r["status"] for r in runs] == ["completed", "completed", "throttled"]
    assert "max_executions_per_hour" in runs[2]["error"]


async def test_an_approval_waits_for_the_decision_sent_to_the_run(api: httpx.Client, running_system: System):
    run_id = start_run(
        api,
        [
            node("ask", "approval", assignee={"role": "approver"}, title="Ship {{ trigger.order }}?"),
            node("ship", "end"),
            node("stop", "end"),
        ],
        [edge("start", "ask"), edge("ask", "ship", "approved"), edge("ask", "stop", "rejected")],
        {"order": "A-17"},
    )
    deadline = time.monotonic() + 30
    while statuses(api.get(f"/api/v1/runs/{run_id}").json()).get("ask") != "waiting":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    producer = AIOKafkaProducer(**kafka_client(running_system.infra.kafka_bootstrap))
    await producer.start()
    try:
        tenant = api.get("/api/v1/me").json()["tenant_id"]
        resume = ResumeRun(
            tenant_id=tenant, run_id=uuid.UUID(run_id), node_id="ask", decision="approved", decided_by="u-1"
        )
        topic = Namespace(running_system.namespace).topic(RUNS_COMMANDS)
        await producer.send_and_wait(topic, resume.to_bytes(), key=run_id.encode())
    finally:
        await producer.stop()
    run = await asyncio.to_thread(finished, api, run_id)
    assert run["status"] == "completed"
    assert statuses(run)["ship"] == "succeeded" and statuses(run)["stop"] == "skipped"
    assert next(n for n in run["nodes"] if n["node_id"] == "ask")["output"]["decided_by"] == "u-1"


def test_a_delay_fires_after_the_orchestrator_was_killed_and_restarted_during_the_wait(
    api: httpx.Client, running_system: System
):
    run_id = start_run(
        api,
        [node("pause", "wait_delay", duration_seconds=4), node("done", "end")],
        [edge("start", "pause"), edge("pause", "done")],
    )
    deadline = time.monotonic() + 20
    while statuses(api.get(f"/api/v1/runs/{run_id}").json()).get("pause") != "scheduled":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert running_system.stop("orchestrator", signal.SIGKILL) == -signal.SIGKILL
    time.sleep(5)  # the timer comes due while no orchestrator runs
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    running_system.start(("orchestrator",))
    run = finished(api, run_id)
    assert run["status"] == "completed"
    assert statuses(run) == {"start": "succeeded", "pause": "succeeded", "done": "succeeded"}
