"""A node type added as a plugin, end to end: the example package (plugins/chat, installed in the test
environment) registers ``chat_message`` through the ``millrace.nodes`` entry point, and with no other
change the gateway lists it in its catalog and validates it, the orchestrator sends it to the HTTP
runner class, and the runner posts the message to a loopback chat under the tenant's network policy.

Every service is a real process on real Kafka and PostgreSQL, started once for the module."""

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


def chat_workflow(url: str) -> dict:
    return {
        "nodes": [
            {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
            {
                "id": "tell",
                "type": "chat_message",
                "data": {
                    "name": "Tell the team",
                    "url": url,
                    "text": "New deal from {{ trigger.customer }}",
                    "username": "Millrace",
                },
            },
            {
                "id": "done",
                "type": "end",
                "data": {"name": "Done", "output": {"delivered": "{{ nodes.tell.output.delivered }}"}},
            },
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "tell"},
            {"id": "e2", "source": "tell", "target": "done"},
        ],
    }


@dataclass
class World:
    gateway: str
    api: httpx.Client
    server: LoopbackServer
    granted: dict  # a finished run of the tenant allowed to reach loopback
    refused: dict  # a finished run of a tenant that is not


def _run(api: httpx.Client, definition: dict, customer: str) -> str:
    created = api.post("/api/v1/workflows", json={"name": f"chat {customer}", "definition": definition})
    assert created.status_code == 201, created.text
    started = api.post(
        f"/api/v1/workflows/{created.json()['id']}/runs", json={"input": {"customer": customer}}
    )
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def _finished(api: httpx.Client, run_id: str, timeout: float = 40) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        if answer.status_code == 200 and answer.json()["status"] != "running":
            return answer.json()
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish within {timeout:g} s")


@pytest.fixture(scope="module")
def world(infra: Infra, module_namespace: str) -> Iterator[World]:
    system = System(infra, module_namespace)
    try:
        system.start()
        tenant = f"chat-{uuid.uuid4().hex[:8]}"
        allowed = provision_tenant(infra, module_namespace, tenant)
        grant_loopback(infra, module_namespace, tenant)
        denied = provision_tenant(infra, module_namespace, f"nochat-{uuid.uuid4().hex[:8]}")
        with (
            signed_in(system.url("gateway"), allowed) as api,
            signed_in(system.url("gateway"), denied) as other,
            loopback_server() as server,
        ):
            server.route("/chat", Answer(200, {"ok": True}))
            granted = _run(api, chat_workflow(f"{server.url}/chat"), "Ada")
            refused = _run(other, chat_workflow(f"{server.url}/chat"), "Bob")
            yield World(
                system.url("gateway"), api, server, _finished(api, granted), _finished(other, refused)
            )
    finally:
        system.stop_all()


def test_the_catalog_lists_the_plugin_type_with_its_schema(world: World):
    catalog = world.api.get("/api/v1/node-types")
    assert catalog.status_code == 200, catalog.text
    listed = {entry["type"]: entry for entry in catalog.json()}
    chat = listed["chat_message"]
    assert chat["category"] == "Chat"
    assert chat["schema"]["required"] == ["name", "url", "text"]
    assert {"url", "text", "username", "channel", "retry", "on_error"} <= set(chat["schema"]["properties"])
    # the built-in types come first, in their categories' order
    assert [entry["type"] for entry in catalog.json()][-1] == "chat_message"
    assert [entry["category"] for entry in catalog.json()][:1] == ["Triggers"]


def test_a_run_posts_the_message_through_the_plugin_and_completes(world: World):
    run = world.granted
    nodes = {n["node_id"]: n for n in run["nodes"]}
    assert run["status"] == "completed", (run.get("error"), nodes.get("tell"))
    assert nodes["tell"]["status"] == "succeeded"
    assert nodes["tell"]["output"] == {"delivered": True, "status": 200, "body": {"ok": True}}
    assert nodes["done"]["output"] == {"delivered": True}
    (posted,) = world.server.requests_to("/chat")
    assert posted.method == "POST"
    assert posted.json() == {"text": "New deal from Ada", "username": "Millrace"}
    assert posted.header("content-type") == "application/json"
    assert posted.header("idempotency-key") == f"{run['run_id']}:tell:1"


def test_the_plugin_node_is_held_by_the_tenant_network_policy(world: World):
    run = world.refused
    nodes = {n["node_id"]: n for n in run["nodes"]}
    assert run["status"] == "failed"
    assert nodes["tell"]["status"] == "failed"
    assert nodes["tell"]["error"]["type"] == "target_not_allowed"
    assert all(
        r.json() != {"text": "New deal from Bob", "username": "Millrace"} for r in world.server.received
    )


def test_a_definition_with_a_type_no_plugin_provides_is_refused_naming_it(world: World):
    definition = chat_workflow("https://chat.example/hook")
    definition["nodes"][1]["type"] = "chat_mesage"
    answer = world.api.post("/api/v1/workflows", json={"name": "typo", "definition": definition})
    assert answer.status_code == 422, answer.text
    assert answer.json()["code"] == "invalid_definition"
    (problem,) = [e for e in answer.json()["errors"] if e["pointer"] == "/definition/nodes/1/type"]
    assert "unknown node type 'chat_mesage'" in problem["detail"]
    assert "chat_message" in problem["detail"] and "plugin" in problem["detail"]
