"""Re-runs and bulk retry/cancel against real processes (gateway and orchestrator), real Kafka and real
PostgreSQL: a re-run starts from the original's trigger data (or edited input) and both runs link each
other; a bulk operation counts, confirms with a token, acts only while the selection still matches
that count, reports per run, and never reaches another tenant's runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.integration

BULK_MAX = 6


def node(node_id: str, node_type: str, **data: object) -> dict:
    return {"id": node_id, "type": node_type, "position": {"x": 0, "y": 0}, "data": {"name": node_id, **data}}


# d = 0 fails the run at once (division by zero in a template); any other d keeps it running for 10 min.
DIVIDE_THEN_WAIT = {
    "nodes": [
        node("start", "trigger", kind="manual"),
        node("divide", "set", variables={"q": "{{ 10 / trigger.d }}"}),
        node("wait", "wait_delay", duration_seconds=600),
        node("done", "end", output={"q": "{{ vars.q }}"}),
    ],
    "edges": [
        {"id": "a", "source": "start", "target": "divide"},
        {"id": "b", "source": "divide", "target": "wait"},
        {"id": "c", "source": "wait", "target": "done"},
    ],
    "settings": {"retry_count": 0},
}


@pytest.fixture(scope="module")
def bulk_system(infra: Infra, module_namespace: str) -> Iterator[System]:
    running = System(infra, module_namespace)
    try:
        running.start(("gateway", "orchestrator"), extra_env={"MILLRACE_BULK_RUNS_MAX": str(BULK_MAX)})
        yield running
    finally:
        running.stop_all()


def new_tenant(system: System, prefix: str) -> Account:
    return provision_tenant(system.infra, system.namespace, f"{prefix}{uuid.uuid4().hex[:6]}")


@pytest.fixture
def api(bulk_system: System) -> Iterator[httpx.Client]:
    with signed_in(bulk_system.url("gateway"), new_tenant(bulk_system, "bulk")) as signed:
        yield signed


def workflow(api: httpx.Client) -> str:
    created = api.post("/api/v1/workflows", json={"name": "divide", "definition": DIVIDE_THEN_WAIT})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def start(api: httpx.Client, workflow_id: str, d: int) -> str:
    started = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": {"d": d}})
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def settled(api: httpx.Client, run_id: str, wanted: set[str], *, node: str | None = None) -> dict:
    """The run once its status is one of ``wanted`` (and, if named, ``node`` has finished)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        if answer.status_code == 200:
            run = answer.json()
            finished = {n["node_id"] for n in run["nodes"] if n["status"] in ("succeeded", "failed")}
            if run["status"] in wanted and (node is None or node in finished):
                return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not reach {wanted}: {api.get(f'/api/v1/runs/{run_id}').text}")


def test_a_rerun_starts_from_the_originals_trigger_data_and_the_two_runs_link_each_other(api: httpx.Client):
    wid = workflow(api)
    original = settled(api, start(api, wid, 0), {"failed"})
    answer = api.post(f"/api/v1/runs/{original['run_id']}/rerun")
    assert answer.status_code == 202, answer.text
    assert answer.json()["rerun_of"] == original["run_id"] and answer.json()["workflow_version"] == 1
    again = settled(api, answer.json()["run_id"], {"failed"})
    assert again["trigger"]["data"] == {"d": 0} and again["rerun_of"] == original["run_id"]

    edited = api.post(f"/api/v1/runs/{original['run_id']}/rerun", json={"input": {"d": 5}})
    assert edited.status_code == 202, edited.text
    running = settled(api, edited.json()["run_id"], {"running"}, node="divide")
    assert running["trigger"]["data"] == {"d": 5}
    assert next(n for n in running["nodes"] if n["node_id"] == "divide")["output"] == {"q": 2.0}
    assert api.get(f"/api/v1/runs/{original['run_id']}").json()["reruns"] == [
        answer.json()["run_id"],
        edited.json()["run_id"],
    ]

    # A newer version does not change what a re-run runs, unless it asks for that version.
    updated = api.put(f"/api/v1/workflows/{wid}", json={"name": "divide v2", "definition": DIVIDE_THEN_WAIT})
    assert updated.status_code == 200, updated.text
    same = api.post(f"/api/v1/runs/{original['run_id']}/rerun")
    newer = api.post(f"/api/v1/runs/{original['run_id']}/rerun", json={"version": 2})
    assert (same.json()["workflow_version"], newer.json()["workflow_version"]) == (1, 2)
    assert settled(api, newer.json()["run_id"], {"failed"})["workflow_version"] == 2

    still_running = api.post(f"/api/v1/runs/{running['run_id']}/rerun")
    assert still_running.status_code == 409 and still_running.json()["code"] == "wrong_state"
    unknown_version = api.post(f"/api/v1/runs/{original['run_id']}/rerun", json={"version": 9})
    assert unknown_version.status_code == 422 and unknown_version.json()["code"] == "unknown_version"
    not_an_object = api.post(f"/api/v1/runs/{original['run_id']}/rerun", json={"input": [1, 2]})
    assert not_an_object.status_code == 422
    assert "/body/input" in {e["pointer"] for e in not_an_object.json()["errors"]}
    assert api.post(f"/api/v1/runs/{uuid.uuid4()}/rerun").status_code == 404
    api.post(f"/api/v1/runs/{running['run_id']}/cancel")


def test_a_run_of_another_tenant_cannot_be_rerun_nor_shows_its_links(api: httpx.Client, bulk_system: System):
    original = settled(api, start(api, workflow(api), 0), {"failed"})
    with signed_in(bulk_system.url("gateway"), new_tenant(bulk_system, "other")) as intruder:
        foreign = intruder.post(f"/api/v1/runs/{original['run_id']}/rerun", json={"input": {"d": 1}})
    assert foreign.status_code == 404 and foreign.json()["code"] == "not_found"
    assert api.get(f"/api/v1/runs/{original['run_id']}").json()["reruns"] == []


def test_bulk_cancel_counts_confirms_and_cancels_each_matching_run(api: httpx.Client):
    wid = workflow(api)
    running = sorted(start(api, wid, 2) for _ in range(3))
    for run_id in running:
        settled(api, run_id, {"running"}, node="divide")
    failed = settled(api, start(api, wid, 0), {"failed"})["run_id"]

    counted = api.post(
        "/api/v1/runs/bulk", json={"action": "cancel", "filter": {"workflow_id": wid, "status": "running"}}
    )
    assert counted.status_code == 200, counted.text
    assert counted.json()["count"] == 3 and counted.json()["expires_at"]
    done = api.post("/api/v1/runs/bulk", json={"action": "cancel", "token": counted.json()["token"]})
    assert done.status_code == 200, done.text
    results = done.json()["results"]
    assert sorted(r["run_id"] for r in results) == running
    assert {r["outcome"] for r in results} == {"cancelled"}
    for run_id in running:
        settled(api, run_id, {"cancelled"})
    assert api.get(f"/api/v1/runs/{failed}").json()["status"] == "failed"

    # The same token again: the filter now matches none of them, so nothing is done.
    again = api.post("/api/v1/runs/bulk", json={"action": "cancel", "token": counted.json()["token"]})
    assert again.status_code == 409 and again.json()["code"] == "stale_selection"
    assert again.json()["count"] == 0


def test_bulk_by_the_runs_pages_filters_acts_on_exactly_the_runs_the_list_shows(api: httpx.Client):
    # The console's Runs page filters by trigger kind and by text in the trigger's data; "all matching"
    # sends the same filters, so the count and the runs acted on are the list's.
    wid = workflow(api)
    marked = sorted(
        api.post(f"/api/v1/workflows/{wid}/runs", json={"input": {"d": 3, "tag": f"batch-{i}"}}).json()[
            "run_id"
        ]
        for i in range(2)
    )
    other = start(api, wid, 4)
    for run_id in (*marked, other):
        settled(api, run_id, {"running"}, node="divide")
    shown = api.get(
        "/api/v1/runs", params={"workflow_id": wid, "trigger_kind": "manual", "q": "batch-"}
    ).json()
    assert sorted(r["run_id"] for r in shown["items"]) == marked
    scope = {"workflow_id": wid, "status": "running", "trigger_kind": "manual", "q": "batch-"}
    counted = api.post("/api/v1/runs/bulk", json={"action": "cancel", "filter": scope})
    assert counted.status_code == 200 and counted.json()["count"] == 2, counted.text
    nothing = api.post(
        "/api/v1/runs/bulk",
        json={"action": "cancel", "filter": {"workflow_id": wid, "trigger_kind": "webhook"}},
    )
    assert nothing.json()["count"] == 0
    done = api.post("/api/v1/runs/bulk", json={"action": "cancel", "token": counted.json()["token"]})
    assert sorted(r["run_id"] for r in done.json()["results"]) == marked
    assert api.get(f"/api/v1/runs/{other}").json()["status"] == "running"
    api.post(f"/api/v1/runs/{other}/cancel")


def test_bulk_retry_by_run_ids_reports_the_runs_it_skipped_and_why(api: httpx.Client):
    wid = workflow(api)
    failed = settled(api, start(api, wid, 0), {"failed"})["run_id"]
    running = settled(api, start(api, wid, 3), {"running"}, node="divide")["run_id"]
    counted = api.post("/api/v1/runs/bulk", json={"action": "retry", "run_ids": [failed, running]})
    assert counted.json()["count"] == 2
    results = {
        r["run_id"]: r
        for r in api.post(
            "/api/v1/runs/bulk", json={"action": "retry", "token": counted.json()["token"]}
        ).json()["results"]
    }
    assert results[failed] == {"run_id": failed, "outcome": "retried", "reason": None}
    assert results[running]["outcome"] == "skipped" and "running" in results[running]["reason"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        divide = next(
            n for n in api.get(f"/api/v1/runs/{failed}").json()["nodes"] if n["node_id"] == "divide"
        )
        if divide["attempts"] == 2:
            break
        time.sleep(0.2)
    assert divide["attempts"] == 2
    api.post(f"/api/v1/runs/{running}/cancel")


def test_a_token_whose_filter_matches_another_count_now_is_refused_with_the_new_count(api: httpx.Client):
    wid = workflow(api)
    first = settled(api, start(api, wid, 0), {"failed"})["run_id"]
    counted = api.post("/api/v1/runs/bulk", json={"action": "retry", "filter": {"workflow_id": wid}})
    assert counted.json()["count"] == 1
    settled(api, start(api, wid, 0), {"failed"})
    stale = api.post("/api/v1/runs/bulk", json={"action": "retry", "token": counted.json()["token"]})
    assert stale.status_code == 409 and stale.json()["code"] == "stale_selection"
    assert stale.json()["count"] == 2
    divide = next(n for n in api.get(f"/api/v1/runs/{first}").json()["nodes"] if n["node_id"] == "divide")
    assert divide["attempts"] == 1  # nothing was retried


def test_another_tenants_runs_are_never_counted_nor_acted_on(api: httpx.Client, bulk_system: System):
    foreign_run = settled(api, start(api, workflow(api), 0), {"failed"})["run_id"]
    with signed_in(bulk_system.url("gateway"), new_tenant(bulk_system, "other")) as other:
        own = settled(other, start(other, workflow(other), 0), {"failed"})["run_id"]
        by_filter = other.post("/api/v1/runs/bulk", json={"action": "retry", "filter": {"status": "failed"}})
        assert by_filter.json()["count"] == 1
        by_ids = other.post("/api/v1/runs/bulk", json={"action": "retry", "run_ids": [foreign_run, own]})
        assert by_ids.json()["count"] == 1
        results = other.post("/api/v1/runs/bulk", json={"action": "retry", "token": by_ids.json()["token"]})
        assert [r["run_id"] for r in results.json()["results"]] == [own]
        # A token of this tenant is no token for another one.
        stolen = api.post("/api/v1/runs/bulk", json={"action": "retry", "token": by_filter.json()["token"]})
        assert stolen.status_code == 422 and stolen.json()["code"] == "invalid_bulk_token"
    divide = next(
        n for n in api.get(f"/api/v1/runs/{foreign_run}").json()["nodes"] if n["node_id"] == "divide"
    )
    assert divide["attempts"] == 1


def test_bad_bulk_requests_get_a_4xx_with_the_field(api: httpx.Client, bulk_system: System):
    wid = workflow(api)
    counted = api.post("/api/v1/runs/bulk", json={"action": "retry", "filter": {"workflow_id": wid}})
    other_action = api.post("/api/v1/runs/bulk", json={"action": "cancel", "token": counted.json()["token"]})
    assert other_action.status_code == 422 and other_action.json()["code"] == "invalid_bulk_token"
    forged = api.post("/api/v1/runs/bulk", json={"action": "retry", "token": counted.json()["token"] + "x"})
    assert forged.status_code == 422 and forged.json()["errors"][0]["pointer"] == "/body/token"
    for body in (
        {"action": "retry"},
        {"action": "retry", "filter": {}, "run_ids": [str(uuid.uuid4())]},
        {"action": "retry", "token": "t", "filter": {}},
        {"action": "restart", "filter": {}},
        {"action": "retry", "filter": {"status": "sleeping"}},
    ):
        answer = api.post("/api/v1/runs/bulk", json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["code"] == "invalid_request"
    for run_id in [start(api, wid, 4) for _ in range(BULK_MAX + 1)]:
        settled(api, run_id, {"running"})
    too_many = api.post("/api/v1/runs/bulk", json={"action": "cancel", "filter": {"workflow_id": wid}})
    assert too_many.status_code == 422 and too_many.json()["code"] == "too_many_runs"
    assert too_many.json()["errors"][0]["pointer"] == "/body/filter"
    viewer = api.post(
        "/api/v1/users",
        json={"email": "v@example.test", "password": "correct horse battery", "roles": ["viewer"]},
    )
    assert viewer.status_code == 201, viewer.text
    tenant = api.get("/api/v1/me").json()["tenant_id"]
    with signed_in(
        bulk_system.url("gateway"), Account(tenant, "v@example.test", "correct horse battery")
    ) as v:
        assert v.post("/api/v1/runs/bulk", json={"action": "retry", "filter": {}}).status_code == 403
        assert v.post(f"/api/v1/runs/{uuid.uuid4()}/rerun").status_code == 403
    cancelled = api.post(
        "/api/v1/runs/bulk", json={"action": "cancel", "filter": {"workflow_id": wid, "status": "running"}}
    )
    if cancelled.status_code == 200:
        api.post("/api/v1/runs/bulk", json={"action": "cancel", "token": cancelled.json()["token"]})
