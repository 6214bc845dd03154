"""The public API against a real gateway process, real PostgreSQL and real Kafka: every endpoint,
every role, and one tenant never reaching another's objects."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import jwt
import pytest

from tests.support.api import Account, client, provision_tenant, signed_in, token_for
from tests.support.network import grant_loopback
from tests.support.processes import System

pytestmark = pytest.mark.integration


def manual_definition(url: str = "http://127.0.0.1:9/x") -> dict:
    return {
        "nodes": [
            {
                "id": "start",
                "type": "trigger",
                "position": {"x": 0, "y": 0},
                "data": {"name": "Start", "kind": "manual"},
            },
            {
                "id": "call",
                "type": "http_request",
                "position": {"x": 0, "y": 100},
                "data": {"name": "Call", "url": url, "method": "POST", "body": {"n": "{{ trigger.n }}"}},
            },
            {"id": "end", "type": "end", "position": {"x": 0, "y": 200}, "data": {"name": "End"}},
        ],
        "edges": [
            {"id": "a", "source": "start", "target": "call"},
            {"id": "b", "source": "call", "target": "end"},
        ],
        "settings": {"retry_count": 0},
    }


@pytest.fixture(scope="module")
def gateway(running_system: System) -> str:
    return running_system.url("gateway")


@pytest.fixture(scope="module")
def acme(running_system: System) -> Account:
    account = provision_tenant(running_system.infra, running_system.namespace, f"acme{uuid.uuid4().hex[:6]}")
    grant_loopback(running_system.infra, running_system.namespace, account.tenant_id)
    return account


@pytest.fixture(scope="module")
def admin(gateway: str, acme: Account) -> Iterator[httpx.Client]:
    with signed_in(gateway, acme) as api:
        yield api


def make_user(admin: httpx.Client, gateway: str, tenant: str, role: str) -> httpx.Client:
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.test"
    created = admin.post(
        "/api/v1/users", json={"email": email, "password": "correct horse battery", "roles": [role]}
    )
    assert created.status_code == 201, created.text
    return signed_in(gateway, Account(tenant, email, "correct horse battery"))


def wait_for_status(api: httpx.Client, run_id: str, wanted: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        if answer.status_code == 200 and answer.json()["status"] in wanted:
            return answer.json()
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not reach {wanted}: {answer.text}")


# --- authentication --------------------------------------------------------------------------


def test_the_token_endpoint_refuses_a_wrong_password(gateway: str, acme: Account):
    answer = httpx.post(
        f"{gateway}/api/v1/auth/token",
        json={"tenant_id": acme.tenant_id, "email": acme.email, "password": "nope"},
    )
    assert answer.status_code == 401
    assert answer.json()["code"] == "invalid_credentials"


def test_calls_without_a_token_are_refused_with_problem_details(gateway: str):
    answer = httpx.get(f"{gateway}/api/v1/workflows")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "urn:millrace:problem:unauthenticated",
        "title": "Unauthorized",
        "status": 401,
        "detail": answer.json()["detail"],
        "instance": "/api/v1/workflows",
        "code": "unauthenticated",
        "errors": [],
    }
    assert answer.json()["detail"]


@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda claims, secret: jwt.encode(claims, key=None, algorithm="none"), id="alg-none"),
        pytest.param(lambda claims, secret: jwt.encode(claims, "x" * 40, algorithm="HS256"), id="wrong-key"),
        pytest.param(
            lambda claims, secret: jwt.encode({**claims, "exp": 1}, secret, algorithm="HS256"), id="expired"
        ),
        pytest.param(
            lambda claims, secret: jwt.encode({**claims, "aud": "other"}, secret, algorithm="HS256"),
            id="audience",
        ),
        pytest.param(
            lambda claims, secret: jwt.encode({**claims, "iss": "evil"}, secret, algorithm="HS256"),
            id="issuer",
        ),
        pytest.param(
            lambda claims, secret: jwt.encode(claims, secret, algorithm="HS512"), id="other-algorithm"
        ),
    ],
)
def test_forged_or_stale_tokens_are_refused(gateway: str, acme: Account, running_system: System, forge):
    real = jwt.decode(token_for(gateway, acme), options={"verify_signature": False})
    forged = forge(real, running_system.jwt_secret)
    assert client(gateway, forged).get("/api/v1/me").status_code == 401


def test_api_keys_are_shown_once_work_and_stop_working_when_revoked(admin: httpx.Client, gateway: str):
    created = admin.post("/api/v1/api-keys", json={"name": "ci", "roles": ["viewer"]})
    assert created.status_code == 201
    key = created.json()["key"]
    assert all("key" not in k for k in admin.get("/api/v1/api-keys").json())
    with client(gateway, key) as by_key:
        me = by_key.get("/api/v1/me").json()
        assert me["kind"] == "api_key" and me["roles"] == ["viewer"]
        assert by_key.post("/api/v1/pipelines", json={"id": "x", "name": "x"}).status_code == 403
        assert admin.delete(f"/api/v1/api-keys/{created.json()['id']}").status_code == 204
        assert by_key.get("/api/v1/me").status_code == 401


# --- roles -----------------------------------------------------------------------------------

ROLE_CASES = {
    # (method, path, body) -> roles allowed
    ("GET", "/api/v1/workflows", None): {"admin", "editor", "operator", "viewer", "approver"},
    ("POST", "/api/v1/workflows", "workflow"): {"admin", "editor"},
    ("POST", "/api/v1/pipelines", "pipeline"): {"admin", "editor"},
    ("GET", "/api/v1/credentials", None): {"admin"},
    ("GET", "/api/v1/users", None): {"admin"},
    # editors start test runs of what they build; cancel and retry stay with operators
    ("POST", "/api/v1/workflows/{wf}/runs", "run"): {"admin", "editor", "operator"},
    ("GET", "/api/v1/settings/network", None): {"admin", "editor", "operator", "viewer", "approver"},
    ("GET", "/api/v1/settings/ai/usage", None): {"admin"},
    ("GET", "/api/v1/ai/usage", None): {"admin"},
    ("POST", "/api/v1/pipelines/{pipe}/records", "record"): {"admin", "editor", "operator"},
}


@pytest.mark.parametrize("role", ["admin", "editor", "operator", "viewer", "approver"])
def test_each_role_can_do_what_it_grants_and_nothing_more(
    admin: httpx.Client, gateway: str, acme: Account, role: str
):
    workflow_id = admin.post(
        "/api/v1/workflows", json={"name": "roles", "definition": manual_definition()}
    ).json()["id"]
    pipeline = f"p{uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/pipelines", json={"id": pipeline, "name": "P"}).status_code == 201
    bodies = {
        "workflow": {"name": "x", "definition": manual_definition()},
        "pipeline": {"id": f"q{uuid.uuid4().hex[:6]}", "name": "Q"},
        "run": {"input": {"n": 1}},
        "record": {"data": {"a": 1}},
        None: None,
    }
    api = make_user(admin, gateway, acme.tenant_id, role)
    for (method, path, body), allowed in ROLE_CASES.items():
        answer = api.request(method, path.format(wf=workflow_id, pipe=pipeline), json=bodies[body])
        if role in allowed:
            assert answer.status_code < 300, (role, method, path, answer.text)
        else:
            assert answer.status_code == 403, (role, method, path, answer.text)
            assert answer.json()["code"] == "forbidden"


# --- workflows -------------------------------------------------------------------------------


def test_a_workflow_lives_through_versions_activation_pause_and_archive(admin: httpx.Client):
    created = admin.post("/api/v1/workflows", json={"name": "Lifecycle", "definition": manual_definition()})
    assert created.status_code == 201
    workflow = created.json()
    assert (workflow["status"], workflow["latest_version"], workflow["trigger_kind"]) == (
        "draft",
        1,
        "manual",
    )
    wid = workflow["id"]

    updated = admin.put(
        f"/api/v1/workflows/{wid}",
        json={"name": "Lifecycle 2", "definition": manual_definition("http://127.0.0.1:9/y")},
    )
    assert updated.json()["latest_version"] == 2
    versions = admin.get(f"/api/v1/workflows/{wid}/versions").json()
    assert [v["version"] for v in versions] == [2, 1]
    first = admin.get(f"/api/v1/workflows/{wid}/versions/1").json()
    assert first["definition"]["nodes"][1]["data"]["url"] == "http://127.0.0.1:9/x"

    active = admin.post(f"/api/v1/workflows/{wid}/activate", json={"version": 1}).json()
    assert (active["status"], active["active_version"]) == ("active", 1)
    assert admin.post(f"/api/v1/workflows/{wid}/activate", json={"version": 9}).status_code == 404
    assert admin.post(f"/api/v1/workflows/{wid}/pause").json()["status"] == "paused"
    assert admin.post(f"/api/v1/workflows/{wid}/archive").json()["status"] == "archived"
    refused = admin.put(f"/api/v1/workflows/{wid}", json={"name": "x", "definition": manual_definition()})
    assert refused.status_code == 409

    listed = admin.get("/api/v1/workflows", params={"status": "archived", "name": "lifecycle"}).json()
    assert [w["id"] for w in listed["items"]] == [wid]
    assert admin.get(f"/api/v1/workflows/{wid}/webhook").json()["url"].count("/hooks/") == 1


def test_a_workflow_has_a_description_and_an_owner_and_the_list_shows_them(
    admin: httpx.Client, gateway: str, acme: Account
):
    created = admin.post(
        "/api/v1/workflows",
        json={"name": "Owned", "description": "Calls the partner", "definition": manual_definition()},
    )
    assert created.status_code == 201, created.text
    workflow = created.json()
    me = admin.get("/api/v1/me").json()
    assert (workflow["description"], workflow["created_by_name"], workflow["updated_by_name"]) == (
        "Calls the partner",
        acme.email,
        acme.email,
    )
    assert workflow["created_by"] == workflow["updated_by"] == me["subject"]

    editor = make_user(admin, gateway, acme.tenant_id, "editor")
    editor_id = editor.get("/api/v1/me").json()["subject"]
    editor_email = next(u["email"] for u in admin.get("/api/v1/users").json() if u["id"] == editor_id)
    kept = editor.put(
        f"/api/v1/workflows/{workflow['id']}", json={"name": "Owned", "definition": manual_definition()}
    ).json()
    assert (kept["description"], kept["created_by_name"], kept["updated_by_name"]) == (
        "Calls the partner",
        acme.email,
        editor_email,
    )
    changed = editor.put(
        f"/api/v1/workflows/{workflow['id']}",
        json={"name": "Owned", "description": "", "definition": manual_definition()},
    ).json()
    assert changed["description"] == ""

    key = admin.post("/api/v1/api-keys", json={"name": "deployer", "roles": ["editor"]}).json()["key"]
    with client(gateway, key) as by_key:
        made = by_key.post("/api/v1/workflows", json={"name": "By key", "definition": manual_definition()})
    assert made.json()["created_by_name"] == "API key deployer"
    listed = admin.get("/api/v1/workflows", params={"name": "Owned"}).json()["items"]
    assert [(w["description"], w["created_by_name"], w["updated_by_name"]) for w in listed] == [
        ("", acme.email, editor_email)
    ]
    too_long = admin.post(
        "/api/v1/workflows", json={"name": "x", "description": "d" * 2001, "definition": manual_definition()}
    )
    assert too_long.status_code == 422


def test_workflow_lists_are_paginated(admin: httpx.Client):
    marker = uuid.uuid4().hex[:8]
    for i in range(5):
        admin.post(
            "/api/v1/workflows", json={"name": f"page {marker} {i}", "definition": manual_definition()}
        )
    first = admin.get("/api/v1/workflows", params={"name": marker, "limit": 3}).json()
    second = admin.get(
        "/api/v1/workflows", params={"name": marker, "limit": 3, "offset": first["next_offset"]}
    ).json()
    assert len(first["items"]) == 3 and len(second["items"]) == 2 and second["next_offset"] is None
    assert {w["id"] for w in first["items"]}.isdisjoint({w["id"] for w in second["items"]})


def test_an_invalid_definition_gets_every_problem_with_its_pointer(admin: httpx.Client):
    broken = manual_definition()
    broken["edges"].append({"id": "c", "source": "call", "target": "ghost"})
    broken["nodes"][1]["data"]["url"] = "ftp://nope"
    answer = admin.post("/api/v1/workflows", json={"name": "bad", "definition": broken})
    assert answer.status_code == 422
    body = answer.json()
    assert body["code"] == "invalid_definition"
    pointers = {d["pointer"] for d in body["errors"]}
    assert "/definition/nodes/1/data/url" in pointers
    assert any(p.startswith("/definition/edges/2") for p in pointers)
    checked = admin.post("/api/v1/workflows/validate", json={"definition": broken}).json()
    assert checked["valid"] is False and len(checked["problems"]) >= 2


def test_malformed_bodies_get_a_4xx_with_the_field(admin: httpx.Client):
    answer = admin.post("/api/v1/workflows", json={"name": "", "definition": "no"})
    assert answer.status_code == 422
    assert {d["pointer"] for d in answer.json()["errors"]} >= {"/body/name", "/body/definition"}
    too_big = admin.post(
        "/api/v1/workflows",
        content=b"{" + b" " * (3 * 1024 * 1024) + b"}",
        headers={"content-type": "application/json"},
    )
    assert too_big.status_code == 413


# --- runs ------------------------------------------------------------------------------------


def test_a_manual_run_fails_on_an_unreachable_target_and_is_retried_from_the_failed_node(admin: httpx.Client):
    wid = admin.post("/api/v1/workflows", json={"name": "manual", "definition": manual_definition()}).json()[
        "id"
    ]
    started = admin.post(
        f"/api/v1/workflows/{wid}/runs", json={"input": {"n": 7}}, headers={"Idempotency-Key": "k-1"}
    )
    assert started.status_code == 202
    run_id = started.json()["run_id"]
    again = admin.post(
        f"/api/v1/workflows/{wid}/runs", json={"input": {"n": 7}}, headers={"Idempotency-Key": "k-1"}
    )
    assert again.json()["run_id"] == run_id

    failed = wait_for_status(admin, run_id, {"failed"})
    call = next(n for n in failed["nodes"] if n["node_id"] == "call")
    assert call["status"] == "failed" and call["attempts"] == 1
    assert failed["trigger"]["data"] == {"n": 7}
    assert admin.post(f"/api/v1/runs/{run_id}/cancel").status_code == 409

    assert admin.post(f"/api/v1/runs/{run_id}/retry").status_code == 202
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        run = admin.get(f"/api/v1/runs/{run_id}").json()
        call = next(n for n in run["nodes"] if n["node_id"] == "call")
        # The second attempt's failure, not the first's status read before the retry reached the run.
        if call["attempts"] == 2 and call["status"] == "failed" and run["status"] == "failed":
            break
        time.sleep(0.2)
    assert call["attempts"] == 2 and call["status"] == "failed" and run["status"] == "failed"
    start = next(n for n in run["nodes"] if n["node_id"] == "start")
    assert start["output"]["data"] == {"n": 7}

    listed = admin.get("/api/v1/runs", params={"workflow_id": wid, "status": "failed"}).json()
    assert [r["run_id"] for r in listed["items"]] == [run_id]


@pytest.fixture
def stalling_server() -> Iterator[str]:
    """A loopback server that holds every request until the test ends (at most 60 s)."""
    release = threading.Event()

    class Stall(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            release.wait(60)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Stall)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()


def test_a_running_run_can_be_cancelled(admin: httpx.Client, stalling_server: str):
    slow = manual_definition(url=f"{stalling_server}/hold")
    slow["nodes"][1]["data"]["timeout_seconds"] = 60
    wid = admin.post("/api/v1/workflows", json={"name": "slow", "definition": slow}).json()["id"]
    run_id = admin.post(f"/api/v1/workflows/{wid}/runs", json={"input": {"n": 1}}).json()["run_id"]
    wait_for_status(admin, run_id, {"running"})
    assert admin.post(f"/api/v1/runs/{run_id}/cancel").status_code == 202
    assert wait_for_status(admin, run_id, {"cancelled"})["error"] == "cancelled by a user"


# --- pipelines, records, settings, credentials -----------------------------------------------


def test_records_can_be_created_read_merged_replaced_and_deleted(admin: httpx.Client):
    pipe = f"crm{uuid.uuid4().hex[:6]}"
    assert admin.post("/api/v1/pipelines", json={"id": pipe, "name": "CRM"}).status_code == 201
    assert admin.post("/api/v1/pipelines", json={"id": pipe, "name": "CRM"}).status_code == 409
    record = admin.post(f"/api/v1/pipelines/{pipe}/records", json={"data": {"a": 1, "b": 2}}).json()
    rid = record["id"]
    assert admin.patch(f"/api/v1/pipelines/{pipe}/records/{rid}", json={"data": {"b": 3}}).json()["data"] == {
        "a": 1,
        "b": 3,
    }
    assert admin.put(f"/api/v1/pipelines/{pipe}/records/{rid}", json={"data": {"c": 4}}).json()["data"] == {
        "c": 4
    }
    assert admin.get(f"/api/v1/pipelines/{pipe}/records/{rid}").json()["data"] == {"c": 4}
    assert admin.get(f"/api/v1/pipelines/{pipe}").json()["record_count"] == 1
    assert admin.delete(f"/api/v1/pipelines/{pipe}").status_code == 409
    assert admin.delete(f"/api/v1/pipelines/{pipe}/records/{rid}").status_code == 204
    assert admin.get(f"/api/v1/pipelines/{pipe}/records").json()["items"] == []
    assert admin.patch(f"/api/v1/pipelines/{pipe}", json={"name": "Renamed"}).json()["name"] == "Renamed"
    assert admin.delete(f"/api/v1/pipelines/{pipe}").status_code == 204


def test_secrets_are_stored_but_never_returned(admin: httpx.Client):
    put = admin.put(
        "/api/v1/settings/ai",
        json={"base_url": "https://llm.example/v1", "model": "m", "api_key": "sk-secret"},
    )
    assert put.status_code == 200
    assert "sk-secret" not in put.text and put.json()["has_api_key"] is True
    kept = admin.put("/api/v1/settings/ai", json={"base_url": "https://llm.example/v1", "model": "m2"}).json()
    assert kept["has_api_key"] is True and kept["model"] == "m2"

    name = f"crm-token-{uuid.uuid4().hex[:4]}"
    created = admin.post(
        "/api/v1/credentials", json={"name": name, "secret": {"kind": "bearer", "token": "tok-123"}}
    )
    assert created.status_code == 201 and "tok-123" not in created.text
    assert (
        admin.put(
            f"/api/v1/credentials/{name}",
            json={"secret": {"kind": "basic", "username": "u", "password": "p"}},
        ).json()["kind"]
        == "basic"
    )
    assert "tok-123" not in admin.get("/api/v1/credentials").text
    assert admin.delete(f"/api/v1/credentials/{name}").status_code == 204
    assert admin.get(f"/api/v1/credentials/{name}").status_code == 404


def test_the_catalog_serves_node_schemas_and_condition_presets(admin: httpx.Client):
    types = admin.get("/api/v1/node-types").json()
    assert {"trigger", "http_request", "condition", "approval"} <= {t["type"] for t in types}
    assert all(t["schema"]["type"] == "object" for t in types)
    presets = {p["id"]: p for p in admin.get("/api/v1/condition-presets").json()}
    assert presets["invoice_overdue"]["name"] == "Invoice is overdue"
    assert presets["invoice_overdue"]["description"]
    assert presets["invoice_overdue"]["condition"]["and"][1] == {
        "field": "trigger.record.data.due_date",
        "operator": "before",
        "value": "today",
    }
    assert presets["urgent_ticket"]["condition"]["or"][1]["ignore_case"] is True


# --- tenant isolation ------------------------------------------------------------------------


def test_another_tenants_ids_are_404_on_every_endpoint_and_change_nothing(
    admin: httpx.Client, gateway: str, running_system: System
):
    wid = admin.post("/api/v1/workflows", json={"name": "mine", "definition": manual_definition()}).json()[
        "id"
    ]
    pipe = f"own{uuid.uuid4().hex[:6]}"
    admin.post("/api/v1/pipelines", json={"id": pipe, "name": "Own"})
    rid = admin.post(f"/api/v1/pipelines/{pipe}/records", json={"data": {"k": "v"}}).json()["id"]
    run_id = admin.post(f"/api/v1/workflows/{wid}/runs", json={"input": {}}).json()["run_id"]
    run = wait_for_status(admin, run_id, {"failed", "completed"})
    cred = f"c{uuid.uuid4().hex[:6]}"
    admin.post("/api/v1/credentials", json={"name": cred, "secret": {"kind": "bearer", "token": "t"}})
    user_id = admin.post(
        "/api/v1/users",
        json={"email": f"u{uuid.uuid4().hex[:6]}@x.test", "password": "0123456789", "roles": ["viewer"]},
    ).json()["id"]
    key_id = admin.post("/api/v1/api-keys", json={"name": "k", "roles": ["viewer"]}).json()["id"]
    before = (
        admin.get(f"/api/v1/workflows/{wid}").json(),
        admin.get(f"/api/v1/pipelines/{pipe}/records/{rid}").json(),
        run["status"],
    )

    intruder_account = provision_tenant(
        running_system.infra, running_system.namespace, f"evil{uuid.uuid4().hex[:6]}"
    )
    intruder = signed_in(gateway, intruder_account)
    wf_body = {"name": "x", "definition": manual_definition()}
    attempts = [
        ("GET", f"/api/v1/workflows/{wid}", None),
        ("PUT", f"/api/v1/workflows/{wid}", wf_body),
        ("GET", f"/api/v1/workflows/{wid}/versions", None),
        ("GET", f"/api/v1/workflows/{wid}/versions/1", None),
        ("POST", f"/api/v1/workflows/{wid}/activate", {}),
        ("POST", f"/api/v1/workflows/{wid}/pause", None),
        ("POST", f"/api/v1/workflows/{wid}/archive", None),
        ("POST", f"/api/v1/workflows/{wid}/runs", {"input": {}}),
        ("GET", f"/api/v1/workflows/{wid}/webhook", None),
        ("GET", f"/api/v1/runs/{run_id}", None),
        ("POST", f"/api/v1/runs/{run_id}/cancel", None),
        ("POST", f"/api/v1/runs/{run_id}/retry", None),
        ("GET", f"/api/v1/pipelines/{pipe}", None),
        ("PATCH", f"/api/v1/pipelines/{pipe}", {"name": "x"}),
        ("DELETE", f"/api/v1/pipelines/{pipe}", None),
        ("GET", f"/api/v1/pipelines/{pipe}/records", None),
        ("POST", f"/api/v1/pipelines/{pipe}/records", {"data": {}}),
        ("GET", f"/api/v1/pipelines/{pipe}/records/{rid}", None),
        ("PATCH", f"/api/v1/pipelines/{pipe}/records/{rid}", {"data": {"k": "evil"}}),
        ("PUT", f"/api/v1/pipelines/{pipe}/records/{rid}", {"data": {"k": "evil"}}),
        ("DELETE", f"/api/v1/pipelines/{pipe}/records/{rid}", None),
        ("GET", f"/api/v1/credentials/{cred}", None),
        ("PUT", f"/api/v1/credentials/{cred}", {"secret": {"kind": "bearer", "token": "x"}}),
        ("DELETE", f"/api/v1/credentials/{cred}", None),
        ("PATCH", f"/api/v1/users/{user_id}", {"disabled": True}),
        ("DELETE", f"/api/v1/api-keys/{key_id}", None),
    ]
    for method, path, body in attempts:
        answer = intruder.request(method, path, json=body)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
    for path in ("/api/v1/workflows", "/api/v1/runs"):
        assert intruder.get(path).json()["items"] == []
    assert intruder.get("/api/v1/pipelines").json() == []
    assert intruder.get("/api/v1/credentials").json() == []

    after = (
        admin.get(f"/api/v1/workflows/{wid}").json(),
        admin.get(f"/api/v1/pipelines/{pipe}/records/{rid}").json(),
        admin.get(f"/api/v1/runs/{run_id}").json()["status"],
    )
    assert after == before
    assert admin.get(f"/api/v1/credentials/{cred}").status_code == 200
    assert any(u["id"] == user_id and not u["disabled"] for u in admin.get("/api/v1/users").json())
