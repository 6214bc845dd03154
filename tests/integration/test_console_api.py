"""What the web console's pages ask of the API, against a real gateway, approval service, PostgreSQL
and Kafka: runs across workflows filtered by trigger kind, text in the trigger's data and record,
paged by cursor; records searched and paged by cursor; the month's AI usage; the network policy; the
approvals inbox through the gateway; editors starting test runs; and a run's duration counted from
the trigger's receipt."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.dead_letters import record_workflow
from tests.support.network import grant_loopback
from tests.support.processes import System

pytestmark = pytest.mark.integration

SET_AND_END = {
    "nodes": [
        {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
        {
            "id": "keep",
            "type": "set",
            "data": {"name": "Keep", "variables": {"who": "{{ trigger.customer }}"}},
        },
        {"id": "end", "type": "end", "data": {"name": "End"}},
    ],
    "edges": [
        {"id": "a", "source": "start", "target": "keep"},
        {"id": "b", "source": "keep", "target": "end"},
    ],
}


@pytest.fixture(scope="module")
def acme(running_system: System) -> Account:
    account = provision_tenant(running_system.infra, running_system.namespace, f"cons{uuid.uuid4().hex[:6]}")
    grant_loopback(running_system.infra, running_system.namespace, account.tenant_id)
    return account


@pytest.fixture(scope="module")
def admin(running_system: System, acme: Account) -> Iterator[httpx.Client]:
    with signed_in(running_system.url("gateway"), acme) as api:
        yield api


def user(admin: httpx.Client, running_system: System, acme: Account, role: str) -> httpx.Client:
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.test"
    body = {"email": email, "password": "correct horse battery", "roles": [role]}
    assert admin.post("/api/v1/users", json=body).status_code == 201
    return signed_in(running_system.url("gateway"), Account(acme.tenant_id, email, "correct horse battery"))


def finished(api: httpx.Client, query: dict, count: int, timeout: float = 45) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = api.get("/api/v1/runs", params={**query, "limit": 100}).json()["items"]
        if len(items) >= count and all(r["finished_at"] for r in items):
            return items
        time.sleep(0.3)
    raise AssertionError(f"{count} finished runs for {query} within {timeout} s")


def test_runs_are_filtered_by_trigger_kind_and_text_and_paged_by_cursor(
    admin: httpx.Client, running_system: System, acme: Account
):
    created = admin.post("/api/v1/workflows", json={"name": "Console runs", "definition": SET_AND_END})
    workflow_id = created.json()["id"]
    editor = user(admin, running_system, acme, "editor")
    for customer in ("alpha-one", "beta_two", "gamma 100%"):
        started = editor.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": {"customer": customer}})
        assert started.status_code == 202, started.text  # editors start test runs
    runs = finished(admin, {"workflow_id": workflow_id}, 3)
    assert {r["trigger_kind"] for r in runs} == {"manual"}
    for run in runs:  # counted from the gateway's receipt of the request, not from the orchestrator's turn
        assert datetime.fromisoformat(run["finished_at"]) > datetime.fromisoformat(run["started_at"])

    def listed(**params: object) -> list[dict]:
        answer = admin.get("/api/v1/runs", params={"workflow_id": workflow_id, **params})
        assert answer.status_code == 200, answer.text
        return answer.json()["items"]

    assert len(listed(trigger_kind="manual")) == 3
    assert listed(trigger_kind="webhook") == []
    assert len(listed(q="ALPHA")) == 1  # case-insensitive
    assert len(listed(q="_two")) == 1 and len(listed(q="_")) == 1  # LIKE's wildcards are literal
    assert len(listed(q="100%")) == 1
    assert listed(q="nobody") == []

    first = admin.get("/api/v1/runs", params={"workflow_id": workflow_id, "limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"] and first["next_offset"] == 2
    second = admin.get(
        "/api/v1/runs", params={"workflow_id": workflow_id, "limit": 2, "cursor": first["next_cursor"]}
    ).json()
    assert len(second["items"]) == 1 and second["next_cursor"] is None
    seen = [r["run_id"] for r in first["items"] + second["items"]]
    assert sorted(seen) == sorted(r["run_id"] for r in runs)

    bad = admin.get("/api/v1/runs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 422
    assert [e["pointer"] for e in bad.json()["errors"]] == ["/query/cursor"]

    viewer = user(admin, running_system, acme, "viewer")
    refused = viewer.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": {}})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_records_are_searched_and_paged_by_cursor_and_show_the_runs_they_started(admin: httpx.Client):
    pipeline = f"orders{uuid.uuid4().hex[:6]}"
    workflow_id = record_workflow(admin, pipeline)
    ids = []
    for n in range(5):
        answer = admin.post(
            f"/api/v1/pipelines/{pipeline}/records", json={"data": {"sku": f"SKU-{n}", "n": n}}
        )
        assert answer.status_code == 201
        ids.append(answer.json()["id"])
    pages, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = admin.get(f"/api/v1/pipelines/{pipeline}/records", params=params).json()
        pages.append([r["id"] for r in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    assert sorted(i for page in pages for i in page) == sorted(ids)
    found = admin.get(f"/api/v1/pipelines/{pipeline}/records", params={"q": "sku-3"}).json()["items"]
    assert [r["data"]["n"] for r in found] == [3]

    runs = finished(admin, {"workflow_id": workflow_id}, 5)
    assert len({r["trigger_kind"] for r in runs}) == 1
    of_record = admin.get("/api/v1/runs", params={"record_id": ids[2]}).json()["items"]
    assert len(of_record) == 1 and of_record[0]["workflow_id"] == workflow_id


def test_ai_usage_and_network_policy_are_shown_to_whom_they_concern(
    admin: httpx.Client, running_system: System, acme: Account
):
    usage = admin.get("/api/v1/settings/ai/usage")
    assert usage.status_code == 200, usage.text
    assert usage.json()["tokens"] == 0 and usage.json()["calls"] == 0
    assert usage.json()["month"].endswith("-01")

    viewer = user(admin, running_system, acme, "viewer")
    assert viewer.get("/api/v1/settings/ai/usage").status_code == 403
    policy = viewer.get("/api/v1/settings/network")
    assert policy.status_code == 200
    assert "127.0.0.0/8" in policy.json()["allowed_networks"]
    assert policy.json()["managed_by"] == "operator"


def test_the_approvals_inbox_is_reached_through_the_gateway_with_its_token(
    admin: httpx.Client, running_system: System
):
    inbox = admin.get("/api/v1/approvals")
    assert inbox.status_code == 200, inbox.text
    assert inbox.json() == []
    missing = admin.get(f"/api/v1/approvals/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")
    anonymous = httpx.get(f"{running_system.url('gateway')}/api/v1/approvals", timeout=10)
    assert anonymous.status_code == 401
