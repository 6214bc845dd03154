"""The code node and testing a node, end to end, every service a real process on real Kafka and
PostgreSQL: a run's code node is executed by the node runner in the sandbox; hostile code fails the
node with its documented type in bounded time and the runner runs the next node as before; a syntax
error is refused at save with its line; testing a node answers at once without a run; pinned sample
outputs are used by tests and never by runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.api import provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.network import Answer, LoopbackServer, grant_loopback, loopback_server
from tests.support.processes import System

pytestmark = pytest.mark.e2e

TOTAL = 'def main():\n    return {"total": sum(i["n"] for i in trigger["items"]), "at": now}\n'


def code_workflow(code: str) -> dict:
    return {
        "nodes": [
            {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
            {
                "id": "calc",
                "type": "code",
                "data": {"name": "Calculate", "code": code, "timeout_seconds": 20},
            },
            {
                "id": "done",
                "type": "end",
                "data": {"name": "Done", "output": {"total": "{{ nodes.calc.output.result.total }}"}},
            },
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "calc"},
            {"id": "e2", "source": "calc", "target": "done"},
        ],
    }


@dataclass
class World:
    api: httpx.Client
    server: LoopbackServer


@pytest.fixture(scope="module")
def world(infra: Infra, module_namespace: str) -> Iterator[World]:
    system = System(infra, module_namespace)
    try:
        system.start(ready_timeout=240)  # the code sandbox starts a worker process too
        tenant = f"code-{uuid.uuid4().hex[:8]}"
        account = provision_tenant(infra, module_namespace, tenant)
        grant_loopback(infra, module_namespace, tenant)
        with signed_in(system.url("gateway"), account) as api, loopback_server() as server:
            yield World(api, server)
    finally:
        system.stop_all()


def _create(api: httpx.Client, definition: dict) -> str:
    created = api.post(
        "/api/v1/workflows", json={"name": f"code {uuid.uuid4().hex[:6]}", "definition": definition}
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


def _run(api: httpx.Client, workflow_id: str, data: dict) -> dict:
    started = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": data})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        if answer.status_code == 200 and answer.json()["status"] not in ("running", "pending"):
            return answer.json()
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def _runs_of(api: httpx.Client, workflow_id: str) -> list:
    answer = api.get("/api/v1/runs", params={"workflow_id": workflow_id})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_a_run_executes_the_code_node_in_the_runner(world: World):
    workflow_id = _create(world.api, code_workflow(TOTAL))
    run = _run(world.api, workflow_id, {"items": [{"n": 2}, {"n": 40}]})
    nodes = {n["node_id"]: n for n in run["nodes"]}
    assert run["status"] == "completed", nodes
    assert nodes["calc"]["output"]["result"]["total"] == 42
    assert nodes["calc"]["output"]["result"]["at"].startswith(run["started_at"][:10])
    assert nodes["done"]["output"] == {"total": 42}


HOSTILE = {
    "escape": ("return str(().__class__.__bases__[0].__subclasses__())", "code_error"),
    "import os": ("import os\n    return os.listdir('/')", "code_forbidden"),
    "endless loop": ("while True:\n        pass", "code_timeout"),
    "memory bomb": ("return 10 ** 10 ** 8", "code_memory_limit"),
    "deep recursion": ("return main()", "code_recursion_limit"),
    "huge output": ("return 'x' * 400000", "code_output"),
}


@pytest.mark.parametrize(("body", "error_type"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_code_fails_its_node_and_the_runner_runs_the_next_one(world: World, body, error_type):
    hostile = _create(world.api, code_workflow(f"def main():\n    {body}\n"))
    started = time.monotonic()
    run = _run(world.api, hostile, {"items": []})
    assert time.monotonic() - started < 30
    nodes = {n["node_id"]: n for n in run["nodes"]}
    assert run["status"] == "failed"
    assert nodes["calc"]["error"]["type"] == error_type, nodes["calc"]["error"]
    healthy = _run(world.api, _create(world.api, code_workflow(TOTAL)), {"items": [{"n": 1}]})
    assert healthy["status"] == "completed"


def test_a_syntax_error_is_refused_at_save_with_its_line(world: World):
    answer = world.api.post(
        "/api/v1/workflows",
        json={"name": "broken", "definition": code_workflow("def main():\n    return (\n")},
    )
    assert answer.status_code == 422, answer.text
    (problem,) = [
        e for e in answer.json()["errors"] if e["pointer"].startswith("/definition/nodes/1/data/code")
    ]
    assert "line 2" in problem["detail"] and "syntax" in problem["detail"]


def test_testing_the_code_node_uses_the_pins_and_starts_no_run(world: World):
    workflow_id = _create(world.api, code_workflow(TOTAL))
    pinned = world.api.put(
        f"/api/v1/workflows/{workflow_id}/nodes/start/pin", json={"output": {"items": [{"n": 5}, {"n": 6}]}}
    )
    assert pinned.status_code == 200, pinned.text
    tested = world.api.post(f"/api/v1/workflows/{workflow_id}/nodes/calc/test", json={})
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "succeeded"
    assert tested.json()["output"]["result"]["total"] == 11
    given = world.api.post(
        f"/api/v1/workflows/{workflow_id}/nodes/calc/test", json={"input": {"trigger": {"items": [{"n": 1}]}}}
    )
    assert given.json()["output"]["result"]["total"] == 1
    assert _runs_of(world.api, workflow_id) == []


def test_testing_an_unsaved_draft_and_a_failing_code(world: World):
    workflow_id = _create(world.api, code_workflow(TOTAL))
    draft = code_workflow("def main():\n    raise ValueError('nope')\n")
    tested = world.api.post(
        f"/api/v1/workflows/{workflow_id}/nodes/calc/test", json={"definition": draft, "use_pinned": False}
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "failed"
    assert tested.json()["error"] == {"type": "code_error", "message": "ValueError: nope (line 2)", "line": 2}


def test_a_node_with_side_effects_is_refused_without_the_flag(world: World):
    definition = code_workflow(TOTAL)
    definition["nodes"][1] = {
        "id": "calc",
        "type": "http_request",
        "data": {"name": "Call", "url": "https://example.invalid/"},
    }
    definition["nodes"][2]["data"]["output"] = {}
    workflow_id = _create(world.api, definition)
    refused = world.api.post(f"/api/v1/workflows/{workflow_id}/nodes/calc/test", json={})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "side_effects"


def test_control_nodes_are_evaluated_with_the_pins(world: World):
    definition = code_workflow(TOTAL)
    definition["nodes"].append(
        {
            "id": "big",
            "type": "condition",
            "data": {
                "name": "Big?",
                "condition": {
                    "field": "nodes.calc.output.result.total",
                    "operator": "greater_than",
                    "value": 10,
                },
            },
        }
    )
    definition["edges"].append({"id": "e3", "source": "calc", "target": "big"})
    workflow_id = _create(world.api, definition)
    world.api.put(
        f"/api/v1/workflows/{workflow_id}/nodes/calc/pin", json={"output": {"result": {"total": 99}}}
    )
    tested = world.api.post(f"/api/v1/workflows/{workflow_id}/nodes/big/test", json={})
    assert tested.status_code == 200, tested.text
    assert tested.json()["output"] == {"result": True} and tested.json()["handle"] == "true"


def test_pins_are_never_used_by_runs(world: World):
    workflow_id = _create(world.api, code_workflow(TOTAL))
    world.api.put(
        f"/api/v1/workflows/{workflow_id}/nodes/calc/pin", json={"output": {"result": {"total": 99}}}
    )
    world.api.put(f"/api/v1/workflows/{workflow_id}/nodes/start/pin", json={"output": {"items": [{"n": 50}]}})
    run = _run(world.api, workflow_id, {"items": [{"n": 3}]})
    nodes = {n["node_id"]: n for n in run["nodes"]}
    assert nodes["calc"]["output"]["result"]["total"] == 3
    assert nodes["done"]["output"] == {"total": 3}
    listed = world.api.get(f"/api/v1/workflows/{workflow_id}/pins").json()
    assert [p["node_id"] for p in listed] == ["calc", "start"]
    assert world.api.delete(f"/api/v1/workflows/{workflow_id}/nodes/calc/pin").status_code == 204
    assert world.api.get(f"/api/v1/workflows/{workflow_id}/nodes/calc/pin").status_code == 404


def test_a_node_with_side_effects_runs_for_real_when_confirmed_and_starts_no_run(world: World):
    world.server.route("/orders", Answer(201, {"id": 7}))
    definition = code_workflow(TOTAL)
    definition["nodes"][1] = {
        "id": "calc",
        "type": "http_request",
        "data": {
            "name": "Call",
            "method": "POST",
            "url": f"{world.server.url}/orders",
            "body": {"customer": "{{ trigger.customer }}"},
        },
    }
    definition["nodes"][2]["data"]["output"] = {}
    workflow_id = _create(world.api, definition)
    world.api.put(f"/api/v1/workflows/{workflow_id}/nodes/start/pin", json={"output": {"customer": "Ada"}})
    tested = world.api.post(
        f"/api/v1/workflows/{workflow_id}/nodes/calc/test", json={"execute_side_effects": True}
    )
    assert tested.status_code == 200, tested.text
    assert tested.json()["status"] == "succeeded", tested.json()
    assert tested.json()["output"]["status"] == 201 and tested.json()["output"]["body"] == {"id": 7}
    (posted,) = world.server.requests_to("/orders")
    assert posted.json() == {"customer": "Ada"}
    assert _runs_of(world.api, workflow_id) == []


def test_the_catalog_lists_the_code_node_with_its_schema(world: World):
    listed = {entry["type"]: entry for entry in world.api.get("/api/v1/node-types").json()}
    schema = listed["code"]["schema"]
    assert listed["code"]["category"] == "Logic"
    assert schema["properties"]["code"]["format"] == "python"
    assert "trigger" in schema["properties"]["code"]["x-context-names"]
