"""Sub-workflows, manual input schemas and error workflows through every real service (Kafka,
PostgreSQL, the outbox): a parent waits for its child, a failed child is the node's error, fire and
forget, cancelling, the depth limit, refusals at save and at run time, the error workflow, and a
parent that waits while the orchestrator is killed with SIGKILL."""

from __future__ import annotations

import signal
import time
import uuid

import httpx
import pytest

from tests.support.api import provision_tenant, signed_in
from tests.support.processes import System

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def api(running_system: System) -> httpx.Client:
    account = provision_tenant(running_system.infra, running_system.namespace, f"sub{uuid.uuid4().hex[:6]}")
    return signed_in(running_system.url("gateway"), account)


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def definition(nodes: list[dict], edges: list[dict], *, trigger: dict | None = None, **settings) -> dict:
    start = node("start", "trigger", kind="manual", **(trigger or {}))
    return {"nodes": [start, *nodes], "edges": edges, "settings": {"retry_count": 0, **settings}}


def create(api: httpx.Client, body: dict, name: str = "sub-workflow test") -> str:
    created = api.post("/api/v1/workflows", json={"name": name, "definition": body})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def run(api: httpx.Client, workflow_id: str, data: dict | None = None) -> str:
    started = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": data or {}})
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def finished(api: httpx.Client, run_id: str, timeout: float = 45) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        found = answer.json() if answer.status_code == 200 else {}
        if found.get("status") not in (None, "running"):
            return found
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still running: {api.get(f'/api/v1/runs/{run_id}').text}")


def node_of(found: dict, node_id: str) -> dict:
    return next(n for n in found["nodes"] if n["node_id"] == node_id)


def wait_for(condition, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("the condition never held")


def children_of(api: httpx.Client, run_id: str) -> list[dict]:
    answer = api.get("/api/v1/runs", params={"parent_run_id": run_id})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def doubling(api: httpx.Client) -> str:
    return create(
        api,
        definition(
            [node("done", "end", output={"twice": "{{ trigger.n * 2 }}"})],
            [edge("start", "done")],
            trigger={"input_schema": SCHEMA},
        ),
        "doubling",
    )


def calling(child: str, *, mode: str = "wait", **data) -> dict:
    call = node("call", "sub_workflow", workflow_id=child, mode=mode, input={"n": "{{ trigger.n }}"}, **data)
    return definition(
        [call, node("done", "end", output={"got": "{{ nodes.call.output }}"})],
        [edge("start", "call"), edge("call", "done")],
    )


def test_a_parent_waits_for_its_child_and_the_runs_link_each_other(api: httpx.Client):
    child_workflow = doubling(api)
    parent_workflow = create(api, calling(child_workflow))
    parent_id = run(api, parent_workflow, {"n": 21})

    parent = finished(api, parent_id)
    assert parent["status"] == "completed", parent
    assert node_of(parent, "call")["output"] == {"twice": 42}
    assert parent["final_output"] == {"got": {"twice": 42}}
    [link] = parent["children"]
    assert link["workflow_id"] == child_workflow and link["parent_node_id"] == "call"
    child = finished(api, link["run_id"])
    assert child["status"] == "completed"
    assert child["parent_run_id"] == parent_id and child["parent_node_id"] == "call"
    assert child["trigger"]["kind"] == "sub_workflow" and child["trigger"]["data"] == {"n": 21}
    assert [r["run_id"] for r in children_of(api, parent_id)] == [link["run_id"]]
    assert parent["parent_run_id"] is None


def test_a_failed_child_fails_the_node_which_is_retried_and_then_takes_its_error_edge(api: httpx.Client):
    failing = create(
        api,
        definition(
            [node("broken", "set", variables={"x": "{{ trigger.nothing.here }}"})], [edge("start", "broken")]
        ),
    )
    call = node(
        "call",
        "sub_workflow",
        workflow_id=failing,
        retry={"max_attempts": 2, "backoff_seconds": 0.2, "retry_on": ["sub_workflow_failed"]},
        on_error="error_edge",
    )
    handled = node("handled", "end", output={"error": "{{ nodes.call.error.type }}"})
    parent_id = run(
        api,
        create(api, definition([call, handled], [edge("start", "call"), edge("call", "handled", "error")])),
    )

    parent = finished(api, parent_id)
    assert parent["status"] == "completed", parent
    assert parent["final_output"] == {"error": "sub_workflow_failed"}
    call_row = node_of(parent, "call")
    assert call_row["status"] == "failed" and call_row["attempts"] == 2
    assert "ended failed" in call_row["error"]["message"]
    children = children_of(api, parent_id)
    assert len(children) == 2 and {c["status"] for c in children} == {"failed"}


def test_input_that_does_not_match_the_childs_schema_fails_the_node(api: httpx.Client):
    parent_id = run(api, create(api, calling(doubling(api))), {"n": "many"})
    parent = finished(api, parent_id)
    assert parent["status"] == "failed"
    error = node_of(parent, "call")["error"]
    assert error["type"] == "sub_workflow_input" and "/n" in error["message"]


def test_fire_and_forget_goes_on_at_once_with_the_child_run_id(api: httpx.Client):
    slow = create(
        api, definition([node("pause", "wait_delay", duration_seconds=2)], [edge("start", "pause")])
    )
    parent_id = run(api, create(api, calling(slow, mode="fire_and_forget")), {"n": 1})
    parent = finished(api, parent_id)
    assert parent["status"] == "completed"
    child_id = node_of(parent, "call")["output"]["run_id"]
    assert api.get(f"/api/v1/runs/{child_id}").json()["status"] == "running"
    child = finished(api, child_id)
    assert child["status"] == "completed" and child["parent_run_id"] == parent_id


def test_cancelling_a_waiting_parent_cancels_its_child(api: httpx.Client):
    slow = create(
        api, definition([node("pause", "wait_delay", duration_seconds=600)], [edge("start", "pause")])
    )
    parent_id = run(api, create(api, calling(slow)), {"n": 1})
    [child] = wait_for(lambda: children_of(api, parent_id))
    assert node_of(api.get(f"/api/v1/runs/{parent_id}").json(), "call")["status"] == "waiting"
    cancelled = api.post(f"/api/v1/runs/{parent_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    assert finished(api, parent_id)["status"] == "cancelled"
    assert finished(api, child["run_id"])["status"] == "cancelled"


def test_a_workflow_calling_itself_stops_at_the_depth_limit(api: httpx.Client):
    workflow_id = create(api, definition([node("done", "end")], [edge("start", "done")]))
    updated = api.put(
        f"/api/v1/workflows/{workflow_id}", json={"name": "recursive", "definition": calling(workflow_id)}
    )
    assert updated.status_code == 200, updated.text
    top = finished(api, run(api, workflow_id, {"n": 1}), timeout=60)
    assert top["status"] == "failed"
    depth, run_id = 0, top["run_id"]
    while True:
        children = children_of(api, run_id)
        if not children:
            break
        depth, run_id = depth + 1, children[0]["run_id"]
    assert depth == 8  # MILLRACE_SUB_WORKFLOW_MAX_DEPTH's default
    deepest = finished(api, run_id)
    assert node_of(deepest, "call")["error"]["type"] == "sub_workflow_cycle"


def test_a_missing_or_foreign_workflow_is_refused_at_save(api: httpx.Client, running_system: System):
    missing = str(uuid.uuid4())
    answer = api.post("/api/v1/workflows", json={"name": "x", "definition": calling(missing)})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["pointer"] == "/definition/nodes/1/data/workflow_id"

    other = signed_in(
        running_system.url("gateway"),
        provision_tenant(running_system.infra, running_system.namespace, f"other{uuid.uuid4().hex[:6]}"),
    )
    foreign = create(other, definition([node("done", "end")], [edge("start", "done")]))
    answer = api.post("/api/v1/workflows", json={"name": "x", "definition": calling(foreign)})
    assert answer.status_code == 422, answer.text
    assert "no workflow" in answer.json()["errors"][0]["detail"]

    body = definition([node("done", "end")], [edge("start", "done")], error_workflow_id=foreign)
    answer = api.post("/api/v1/workflows", json={"name": "x", "definition": body})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["pointer"] == "/definition/settings/error_workflow_id"

    own = create(api, definition([node("done", "end")], [edge("start", "done")]))
    body = definition([node("done", "end")], [edge("start", "done")], error_workflow_id=own)
    answer = api.put(f"/api/v1/workflows/{own}", json={"name": "x", "definition": body})
    assert answer.status_code == 422, answer.text
    assert "its own error workflow" in answer.json()["errors"][0]["detail"]


def test_a_manual_run_is_refused_input_its_schema_does_not_allow(api: httpx.Client):
    workflow_id = doubling(api)
    answer = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": {"n": "x"}})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "input_schema_mismatch"
    assert answer.json()["errors"][0]["pointer"] == "/body/input/n"
    bad_schema = definition(
        [node("done", "end")], [edge("start", "done")], trigger={"input_schema": {"type": 3}}
    )
    answer = api.post("/api/v1/workflows", json={"name": "x", "definition": bad_schema})
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["pointer"] == "/definition/nodes/0/data/input_schema"


def test_a_failed_run_starts_its_error_workflow_which_never_starts_itself(api: httpx.Client):
    # The handler fails too, and names the failing workflow as its own error workflow: no loop.
    handler = create(
        api,
        definition(
            [node("broken", "set", variables={"x": "{{ trigger.nothing.here }}"})], [edge("start", "broken")]
        ),
        "handler",
    )
    failing_body = definition(
        [node("broken", "set", variables={"x": "{{ trigger.nothing.here }}"})],
        [edge("start", "broken")],
        error_workflow_id=handler,
    )
    failing = create(api, failing_body, "failing")
    handler_body = definition(
        [node("broken", "set", variables={"x": "{{ trigger.nothing.here }}"})],
        [edge("start", "broken")],
        error_workflow_id=failing,
    )
    assert (
        api.put(
            f"/api/v1/workflows/{handler}", json={"name": "handler", "definition": handler_body}
        ).status_code
        == 200
    )
    failed_id = run(api, failing, {"n": 7})
    assert finished(api, failed_id)["status"] == "failed"

    def handler_runs() -> list[dict]:
        return api.get("/api/v1/runs", params={"workflow_id": handler}).json()["items"]

    [handler_run] = wait_for(handler_runs)
    found = finished(api, handler_run["run_id"])
    assert found["status"] == "failed"
    trigger = found["trigger"]
    assert trigger["kind"] == "error_workflow"
    data = trigger["data"]
    assert data["run_id"] == failed_id and data["workflow_id"] == failing and data["version"] == 1
    assert data["failed_node_id"] == "broken" and data["error"]["type"] == "template"
    assert data["trigger"]["data"] == {"n": 7}
    time.sleep(2)  # a loop would have started the failing workflow again by now
    assert len(api.get("/api/v1/runs", params={"workflow_id": failing}).json()["items"]) == 1
    assert len(handler_runs()) == 1


def test_a_waiting_parent_gets_its_childs_output_though_the_orchestrator_was_killed(
    api: httpx.Client, running_system: System
):
    slow = create(
        api,
        definition(
            [
                node("pause", "wait_delay", duration_seconds=3),
                node("done", "end", output={"n": "{{ trigger.n }}"}),
            ],
            [edge("start", "pause"), edge("pause", "done")],
        ),
    )
    parent_id = run(api, create(api, calling(slow)), {"n": 5})
    [child] = wait_for(lambda: children_of(api, parent_id))
    wait_for(lambda: node_of(api.get(f"/api/v1/runs/{parent_id}").json(), "call")["status"] == "waiting")
    assert running_system.stop("orchestrator", signal.SIGKILL) == -signal.SIGKILL
    time.sleep(4)  # the child's timer comes due while no orchestrator runs
    assert api.get(f"/api/v1/runs/{parent_id}").json()["status"] == "running"
    running_system.start(("orchestrator",))
    parent = finished(api, parent_id)
    assert parent["status"] == "completed", parent
    assert node_of(parent, "call")["output"] == {"n": 5}
    assert finished(api, child["run_id"])["status"] == "completed"


def test_the_node_types_list_the_sub_workflow_and_the_settings_schema_has_the_error_workflow(
    api: httpx.Client,
):
    types = {t["type"]: t for t in api.get("/api/v1/node-types").json()}
    sub = types["sub_workflow"]
    assert sub["category"] == "Flow"
    assert {"workflow_id", "version", "input", "mode"} <= set(sub["schema"]["properties"])
    trigger = types["trigger"]["schema"]["properties"]
    assert "input_schema" in trigger
    settings = api.get("/api/v1/workflow-settings-schema")
    assert settings.status_code == 200, settings.text
    assert "error_workflow_id" in settings.json()["properties"]
