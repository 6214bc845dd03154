"""A run's life after it ends, against real processes (gateway and orchestrator), real Kafka and real
PostgreSQL: its export (JSON Lines) folded by the orchestrator's ``evolve`` gives the state and node log
the run view showed; the tenant's retention setting; and once pruned, the run is gone from the API
while its export still tells all of it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from millrace_common.contracts.messages.run_events import RUN_EVENT
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform.pg import DirectConnections
from millrace_orchestrator.adapters.retention import RunLogRetention
from millrace_orchestrator.domain.projection import project
from millrace_orchestrator.domain.state import RunState, evolve
from millrace_orchestrator.service_layer.retention import RunRetention

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.integration


def node(node_id: str, node_type: str, **data: object) -> dict:
    return {"id": node_id, "type": node_type, "position": {"x": 0, "y": 0}, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    built = {"id": f"{source}->{target}:{handle or ''}", "source": source, "target": target}
    return built | ({"sourceHandle": handle} if handle else {})


BRANCHING = {
    "nodes": [
        node("start", "trigger", kind="manual"),
        node("vars", "set", variables={"n": "{{ trigger.n }}", "label": "run {{ trigger.n }}"}),
        node("check", "condition", condition={"field": "vars.n", "operator": "greater_than", "value": 2}),
        node("pause", "wait_delay", duration_seconds=0.3),
        node("big", "set", variables={"size": "big"}),
        node("small", "set", variables={"size": "small"}),
        node("done", "end", output={"n": "{{ vars.n }}"}),
    ],
    "edges": [
        edge("start", "vars"),
        edge("vars", "check"),
        edge("check", "pause", "true"),
        edge("pause", "big"),
        edge("check", "small", "false"),
        edge("big", "done"),
    ],
}


@pytest.fixture(scope="module")
def lifecycle_system(infra: Infra, module_namespace: str) -> Iterator[System]:
    running = System(infra, module_namespace)
    try:
        running.start(("gateway", "orchestrator"))
        yield running
    finally:
        running.stop_all()


@pytest.fixture(scope="module")
def owner(lifecycle_system: System) -> Account:
    return provision_tenant(lifecycle_system.infra, lifecycle_system.namespace, f"life{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def api(lifecycle_system: System, owner: Account) -> Iterator[httpx.Client]:
    with signed_in(lifecycle_system.url("gateway"), owner) as signed:
        yield signed


def finished_run(api: httpx.Client, data: dict) -> dict:
    created = api.post("/api/v1/workflows", json={"name": "lifecycle", "definition": BRANCHING})
    assert created.status_code == 201, created.text
    started = api.post(f"/api/v1/workflows/{created.json()['id']}/runs", json={"input": data})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        view = api.get(f"/api/v1/runs/{run_id}")
        if view.status_code == 200 and view.json()["status"] != "running":
            return view.json()
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def exported(api: httpx.Client, run_id: str) -> list:
    answer = api.get(f"/api/v1/runs/{run_id}/export")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    return [RUN_EVENT.validate_json(line) for line in answer.text.splitlines()]


def assert_export_gives_the_view(events: list, view: dict) -> None:
    state = RunState(
        run_id=uuid.UUID(view["run_id"]), definition=WorkflowDefinition.model_validate(BRANCHING)
    )
    for event in events:
        state = evolve(state, event)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert state.status.value == view["status"]
    assert (str(state.workflow_id), state.workflow_version) == (view["workflow_id"], view["workflow_version"])
    assert state.trigger.model_dump(mode="json") == view["trigger"]
    nodes = {n["node_id"]: n for n in view["nodes"]}
    assert set(nodes) <= set(state.nodes)
    for node_id, shown in nodes.items():
        folded = state.nodes[node_id]
        assert (folded.status.value, folded.attempt, folded.output) == (
            shown["status"],
            shown["attempts"],
            shown["output"],
        ), node_id
    # The node log as the orchestrator projects it from the same events, field by field.
    rows = project(events).node_rows
    assert {key[1] for key in rows} == set(nodes)
    for (_, node_id), row in rows.items():
        shown = nodes[node_id]
        assert row["status"] == shown["status"] and row["attempts"] == shown["attempts"], node_id
        for field in ("input", "output", "duration_ms"):
            assert row.get(field) == shown[field], (node_id, field)
        for field in ("scheduled_at", "finished_at"):
            at = row.get(field)
            assert (at.isoformat() if at else None) == (
                datetime.fromisoformat(shown[field]).isoformat() if shown[field] else None
            ), (node_id, field)


def test_a_runs_export_folded_by_evolve_gives_the_state_and_node_log_of_the_run_view(api: httpx.Client):
    for data in ({"n": 5}, {"n": 1}):  # the true branch with its timer, then the false one
        view = finished_run(api, data)
        assert view["status"] == "completed"
        assert_export_gives_the_view(exported(api, view["run_id"]), view)


def test_a_run_of_another_tenant_or_none_has_no_export(api: httpx.Client, lifecycle_system: System):
    view = finished_run(api, {"n": 3})
    other = provision_tenant(lifecycle_system.infra, lifecycle_system.namespace, f"oth{uuid.uuid4().hex[:6]}")
    with signed_in(lifecycle_system.url("gateway"), other) as intruder:
        foreign = intruder.get(f"/api/v1/runs/{view['run_id']}/export")
    missing = api.get(f"/api/v1/runs/{uuid.uuid4()}/export")
    for answer in (foreign, missing):
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_tenants_retention_is_set_read_and_checked(api: httpx.Client):
    assert api.get("/api/v1/settings/retention").json() == {
        "run_retention_days": None,
        "export_before_prune": False,
        "updated_at": None,
    }
    stored = api.put(
        "/api/v1/settings/retention", json={"run_retention_days": 90, "export_before_prune": True}
    )
    assert stored.status_code == 200, stored.text
    assert api.get("/api/v1/settings/retention").json() == stored.json()
    assert stored.json()["run_retention_days"] == 90 and stored.json()["export_before_prune"] is True
    refused = api.put("/api/v1/settings/retention", json={"run_retention_days": 0})
    assert refused.status_code == 422
    assert "run_retention_days" in refused.text
    api.put("/api/v1/settings/retention", json={"run_retention_days": None, "export_before_prune": False})


async def test_once_pruned_the_run_is_gone_and_its_export_taken_before_still_gives_its_view(
    api: httpx.Client, lifecycle_system: System
):
    view = finished_run(api, {"n": 7})
    events = exported(api, view["run_id"])
    later = datetime.now(UTC) + timedelta(days=31)
    connections = DirectConnections(lifecycle_system.infra.settings(lifecycle_system.namespace), size=1)
    try:
        retention = RunRetention(
            RunLogRetention(connections),
            lambda: later,
            default_keep=timedelta(days=30),
            processed_keep=timedelta(days=8),
            export=None,
            pause_seconds=0,
        )
        assert (await retention.prune()).runs >= 1
    finally:
        await connections.close()
    assert api.get(f"/api/v1/runs/{view['run_id']}").status_code == 404
    assert api.get(f"/api/v1/runs/{view['run_id']}/export").status_code == 404
    assert_export_gives_the_view(events, view)
    assert all(json.loads(e.to_bytes())["run_id"] == view["run_id"] for e in events)
