"""An agent's side-effecting tool call waits for a person through the approval service: the approval
shows the tool and its arguments with their hash, an approved call runs with those arguments, a
rejected one is told to the model and runs nothing."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.support.api import provision_tenant, signed_in
from tests.support.network import ChatToolCall, ChatTurn, LoopbackServer, chat_route, grant_loopback
from tests.support.processes import System

pytestmark = pytest.mark.e2e


def model(asked: dict) -> ChatTurn:
    """Update both deals the task names (one call each), then report what the tools said."""
    messages = asked["messages"]
    results = [m for m in messages if m["role"] == "tool"]
    if not results:
        ids = json.loads(messages[1]["content"].split("deals ", 1)[1])
        calls = tuple(
            ChatToolCall(
                f"u{i}",
                "update_record",
                json.dumps({"pipeline": "deals", "record_id": rid, "data": {"review": True}}),
            )
            for i, rid in enumerate(ids)
        )
        return ChatTurn(tool_calls=calls)
    return ChatTurn(" | ".join(r["content"][:60] for r in results))


def wait_for(read, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while (value := read()) is None or value is False:
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
    return value


@pytest.mark.timeout(180)
def test_a_tool_call_with_approval_runs_only_once_approved(
    system: System, tenant: str, server: LoopbackServer
):
    system.start(("gateway", "orchestrator", "node-runner", "approval"))
    account = provision_tenant(system.infra, system.namespace, tenant)
    grant_loopback(system.infra, system.namespace, tenant)
    api: httpx.Client = signed_in(system.url("gateway"), account)
    server.route("/v1/chat/completions", chat_route(model))
    settings = {"base_url": f"{server.url}/v1", "model": "m", "api_key": "k", "allow_private_endpoint": True}
    assert api.put("/api/v1/settings/ai", json=settings).status_code == 200
    assert api.post("/api/v1/pipelines", json={"id": "deals", "name": "Deals"}).status_code == 201
    ids = [api.post("/api/v1/pipelines/deals/records", json={"data": {"n": n}}).json()["id"] for n in (1, 2)]
    agent = {
        "id": "agent",
        "type": "ai_agent",
        "position": {"x": 0, "y": 100},
        "data": {
            "name": "Reviewer",
            "task": "Mark for review the deals {{ trigger.ids }}",
            "tools": [{"kind": "records", "pipelines": ["deals"], "actions": ["update"], "approval": True}],
            "approver": {"role": "admin"},
        },
    }
    definition = {
        "nodes": [
            {
                "id": "start",
                "type": "trigger",
                "position": {"x": 0, "y": 0},
                "data": {"name": "s", "kind": "manual"},
            },
            agent,
        ],
        "edges": [{"id": "e", "source": "start", "target": "agent"}],
    }
    created = api.post("/api/v1/workflows", json={"name": "Reviewed", "definition": definition})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    assert api.post(f"/api/v1/workflows/{workflow_id}/activate", json={}).status_code == 200
    run_id = api.post(
        f"/api/v1/workflows/{workflow_id}/runs", json={"input": {"ids": json.dumps(ids)}}
    ).json()["run_id"]

    def two_pending() -> list | None:
        found = api.get("/api/v1/approvals", params={"run_id": run_id})
        assert found.status_code == 200, found.text
        return found.json() if len(found.json()) == 2 else None

    pending = wait_for(two_pending)
    # Each approval is of one call: its place in the turn and a hash of its tool and arguments.
    shown = {a["node_id"].rsplit(".", 1)[0]: api.get(f"/api/v1/approvals/{a['id']}").json() for a in pending}
    assert sorted(shown) == ["agent#t1.0", "agent#t1.1"]
    first, second = shown["agent#t1.0"], shown["agent#t1.1"]
    assert first["data"]["tool"] == "update_record"
    assert first["data"]["arguments"] == {"pipeline": "deals", "record_id": ids[0], "data": {"review": True}}
    assert len(first["data"]["arguments_sha256"]) == 64
    # Nothing ran before anyone decided.
    assert not any(
        api.get(f"/api/v1/pipelines/deals/records/{rid}").json()["data"].get("review") for rid in ids
    )

    approve = {"decision": "approved", "snapshot_hash": first["snapshot_hash"]}
    assert api.post(f"/api/v1/approvals/{first['id']}/decision", json=approve).status_code == 200
    reject = {"decision": "rejected", "note": "not this one", "snapshot_hash": second["snapshot_hash"]}
    assert api.post(f"/api/v1/approvals/{second['id']}/decision", json=reject).status_code == 200

    run = wait_for(lambda: (r := api.get(f"/api/v1/runs/{run_id}").json())["status"] != "running" and r)
    assert run["status"] == "completed", run
    marked = [api.get(f"/api/v1/pipelines/deals/records/{rid}").json()["data"].get("review") for rid in ids]
    assert marked == [True, None]
    nodes = {n["node_id"]: n for n in run["nodes"]}
    answer = nodes["agent"]["output"]["answer"]
    assert "rejected" in answer and "not this one" in answer
