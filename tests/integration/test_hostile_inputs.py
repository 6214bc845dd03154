"""Hostile input against the real services is answered cleanly: a 4xx naming the field and the reason,
in bounded time, never a 500.

- JSON nested deeper than 64 levels, on every endpoint that parses JSON (webhooks, the gateway's API,
  the approval service), is 400 ``invalid_body`` at ``/body``;
- a body over its limit, declared or sent without a length, is refused naming that limit: 256 KiB for
  a webhook (the API's 2 MiB was named), 2 MiB for the API (a body without a length was read whole);
- template results are bounded in total: a ``set`` node that would build ``[[0] * 300] * 300`` or
  ``[[0] * 65536] * 65536``, or more than a render may hold in all, fails with the node error
  ``template`` at once, and the orchestrator goes on;
- a workflow definition over 1 MiB is refused on create, update, validate and duplicate.
"""

from __future__ import annotations

import http.client
import itertools
import json
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from millrace_common.language.workflow_validation import MAX_BYTES
from sqlalchemy import create_engine

from tests.support.api import provision_tenant, signed_in
from tests.support.processes import System
from tests.support.workflows import insert_workflow

pytestmark = pytest.mark.integration

LIMIT = 64
QUICK = 3.0  # seconds any refusal may take, on a shared machine


@pytest.fixture(scope="module")
def api(running_system: System) -> Iterator[httpx.Client]:
    account = provision_tenant(
        running_system.infra, running_system.namespace, f"hostile{uuid.uuid4().hex[:6]}"
    )
    with signed_in(running_system.url("gateway"), account) as client:
        client.tenant_id = account.tenant_id  # type: ignore[attr-defined]
        yield client


def nested(depth: int) -> str:
    """JSON text nested ``depth`` levels deep: objects and arrays by turns."""
    opening = ["[" if level % 2 else '{"k": ' for level in range(depth)]
    closing = ["]" if level % 2 else "}" for level in range(depth)]
    return "".join(reversed(opening)) + "1" + "".join(closing)


def definition(*nodes: dict, trigger: dict | None = None) -> dict:
    chain = [
        {"id": "start", "type": "trigger", "position": {"x": 0, "y": 0},
         "data": {"name": "Start", "kind": "manual", **(trigger or {})}},
        *nodes,
        {"id": "done", "type": "end", "position": {"x": 0, "y": 0}, "data": {"name": "Done"}},
    ]  # fmt: skip
    edges = [
        {"id": f"e{i}", "source": a["id"], "target": b["id"]}
        for i, (a, b) in enumerate(itertools.pairwise(chain))
    ]
    return {"nodes": chain, "edges": edges}


def set_node(node_id: str, variables: dict) -> dict:
    return {"id": node_id, "type": "set", "position": {"x": 0, "y": 0},
            "data": {"name": node_id, "variables": variables}}  # fmt: skip


def created(api: httpx.Client, document: dict) -> str:
    answer = api.post(
        "/api/v1/workflows", json={"name": f"wf-{uuid.uuid4().hex[:6]}", "definition": document}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def timed(send) -> httpx.Response:
    began = time.monotonic()
    answer = send()
    took = time.monotonic() - began
    assert took < QUICK, f"took {took:.1f} s: {answer.status_code} {answer.text[:200]}"
    return answer


def assert_too_deep(answer: httpx.Response) -> None:
    assert answer.status_code == 400, answer.text[:500]
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == "invalid_body"
    assert problem["errors"] == [
        {"pointer": "/body", "detail": f"JSON nested more than {LIMIT} levels deep; the limit is {LIMIT}"}
    ]


def test_json_nested_too_deep_is_a_400_on_every_endpoint_that_parses_json(
    running_system: System, api: httpx.Client
):
    hook_workflow = created(api, definition(trigger={"kind": "webhook"}))
    assert api.post(f"/api/v1/workflows/{hook_workflow}/activate").status_code == 200
    hook = api.get(f"/api/v1/workflows/{hook_workflow}/webhook").json()["url"].rsplit("/", 1)[1]
    hook_url = f"{running_system.url('gateway')}/hooks/{hook}"
    assert api.post("/api/v1/pipelines", json={"id": "deep", "name": "Deep"}).status_code == 201
    record = api.post("/api/v1/pipelines/deep/records", json={"data": {"a": 1}}).json()["id"]
    json_headers = {**api.headers, "content-type": "application/json"}
    approval = f"{running_system.url('approval')}/api/v1/approvals/{uuid.uuid4()}/decision"

    for depth in (LIMIT + 1, 300, 2_000, 10_000, 50_000):  # 50,000 levels: 225 KB
        deep = nested(depth - 1)  # inside the body's own object
        calls = {
            "webhook": lambda deep=deep: httpx.post(
                hook_url, content=f'{{"order": {deep}}}', headers={"content-type": "application/json"}
            ),
            "create record": lambda deep=deep: api.post(
                "/api/v1/pipelines/deep/records", content=f'{{"data": {deep}}}', headers=json_headers
            ),
            "replace record": lambda deep=deep: api.put(
                f"/api/v1/pipelines/deep/records/{record}",
                content=f'{{"data": {deep}}}',
                headers=json_headers,
            ),
            "create workflow": lambda deep=deep: api.post(
                "/api/v1/workflows", content=f'{{"name": "x", "definition": {deep}}}', headers=json_headers
            ),
            "validate": lambda deep=deep: api.post(
                "/api/v1/workflows/validate", content=f'{{"definition": {deep}}}', headers=json_headers
            ),
            "sign in": lambda deep=deep: httpx.post(
                f"{running_system.url('gateway')}/api/v1/auth/token",
                content=f'{{"tenant_id": {deep}}}',
                headers={"content-type": "application/json"},
            ),
            "approval decision": lambda deep=deep: httpx.post(
                approval, content=f'{{"decision": {deep}}}', headers=json_headers
            ),
        }
        for name, call in calls.items():
            try:
                assert_too_deep(timed(call))
            except AssertionError as failed:
                raise AssertionError(f"{name}, {depth} levels: {failed}") from failed

    # at the limit, all is as before
    at_limit = f'{{"data": {nested(LIMIT - 1)}}}'
    assert (
        api.post("/api/v1/pipelines/deep/records", content=at_limit, headers=json_headers).status_code == 201
    )
    hooked = httpx.post(hook_url, content=at_limit, headers={"content-type": "application/json"})
    assert hooked.status_code == 202, hooked.text


def declared_length(base_url: str, path: str, length: int) -> tuple[int, dict]:
    """POST declaring ``length`` bytes but sending only a few: the answer must not wait for the rest."""
    address = urlsplit(base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=QUICK)
    try:
        connection.putrequest("POST", path)
        connection.putheader("Content-Type", "application/json")
        connection.putheader("Content-Length", str(length))
        connection.endheaders()
        connection.send(b'{"a": "')
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read())
    finally:
        connection.close()


def test_a_webhook_over_its_size_limit_is_refused_naming_the_webhook_limit(
    running_system: System, api: httpx.Client
):
    gateway = running_system.url("gateway")
    workflow = created(api, definition(trigger={"kind": "webhook"}))
    assert api.post(f"/api/v1/workflows/{workflow}/activate").status_code == 200
    hook = urlsplit(api.get(f"/api/v1/workflows/{workflow}/webhook").json()["url"]).path
    for length in (50 * 1024 * 1024, 3 * 1024 * 1024, 256 * 1024 + 1):
        status, problem = declared_length(gateway, hook, length)
        assert (status, problem["code"]) == (413, "too_large"), problem
        assert "webhook bodies are limited to 262144 bytes (256 KiB)" in problem["detail"], problem
        assert problem["errors"] == [
            {"pointer": "/header/content-length", "detail": f"declares {length} bytes"}
        ]
    status, problem = declared_length(gateway, "/api/v1/pipelines", 50 * 1024 * 1024)
    assert status == 413 and "request bodies are limited to 2097152 bytes (2 MiB)" in problem["detail"]

    # sent without a length: cut off once past the limit, not read to the end
    for url, limit, named in (
        (hook, 256 * 1024, "webhook"),
        ("/api/v1/pipelines", 2 * 1024 * 1024, "request"),
    ):
        streamed = timed(
            lambda url=url, limit=limit: api.post(
                url,
                content=iter([b'{"a": "', b"x" * limit, b'"}']),
                headers={"content-type": "application/json"},
            )
        )
        assert streamed.status_code == 413, streamed.text
        assert streamed.json()["detail"].startswith(f"{named} bodies are limited to {limit} bytes")
        assert streamed.json()["errors"][0]["pointer"] == "/body"


def wait_for_runs(api: httpx.Client, run_ids: list[str], timeout: float = 30) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    finished: dict[str, dict] = {}
    while len(finished) < len(run_ids):
        assert time.monotonic() < deadline, (
            f"runs not finished in {timeout} s: {set(run_ids) - set(finished)}"
        )
        for run_id in set(run_ids) - set(finished):
            answer = api.get(f"/api/v1/runs/{run_id}")
            if answer.status_code == 200 and answer.json()["status"] not in ("running",):
                finished[run_id] = answer.json()
        time.sleep(0.2)
    return finished


def test_template_results_are_bounded_in_total_and_fail_the_node_at_once(api: httpx.Client):
    cases = {
        "nested": ({"v": "{{ [[0] * 300] * 300 }}"}, "would build more than 65536 items"),
        "explosive": ({"v": "{{ [[0] * 65536] * 65536 }}"}, "would build more than 65536 items"),
        "in all": ({f"v{i}": "{{ [0] * 60000 }}" for i in range(20)}, "in all"),
        "joined": ({"v": "{{ (['x' * 60000] * 60000) | join }}"}, "in all"),
        "fine": ({"v": "{{ [[0] * 100] * 100 }}", "w": "{{ [0] * 65536 }}"}, None),
    }
    runs: dict[str, str] = {}
    for name, (variables, _) in cases.items():
        workflow = created(api, definition(set_node("build", variables)))
        answer = api.post(f"/api/v1/workflows/{workflow}/runs", json={})
        assert answer.status_code == 202, answer.text
        runs[name] = answer.json()["run_id"]

    finished = wait_for_runs(api, list(runs.values()))
    for name, (_, message) in cases.items():
        run = finished[runs[name]]
        [build] = [node for node in run["nodes"] if node["node_id"] == "build"]
        if message is None:
            assert run["status"] == "completed", run
            assert build["output"]["v"] == [[0] * 100] * 100 and len(build["output"]["w"]) == 65536
            continue
        assert run["status"] == "failed", (name, run)
        assert build["status"] == "failed" and build["error"]["type"] == "template", (name, build)
        assert message in build["error"]["message"], (name, build["error"])


def big_definition(size: int) -> dict:
    strings = [set_node(f"s{i}", {"v": "x" * 60_000}) for i in range(size // 60_000 + 1)]
    return definition(*strings)


def test_a_definition_over_one_mebibyte_is_refused_everywhere(running_system: System, api: httpx.Client):
    too_big = big_definition(int(1.5 * MAX_BYTES))  # each string within 64 KiB, the body within 2 MiB
    small = created(api, definition())

    def assert_refused(answer: httpx.Response, pointer: str, measured: str) -> None:
        assert answer.status_code == 422, answer.text[:500]
        problem = answer.json()
        assert problem["code"] == "invalid_definition"
        [error] = problem["errors"]
        assert error["pointer"] == pointer and measured in error["detail"], error
        assert f"the limit is {MAX_BYTES} (1 MiB)" in error["detail"], error

    created_answer = timed(lambda: api.post("/api/v1/workflows", json={"name": "big", "definition": too_big}))
    assert_refused(created_answer, "/definition", "as compact JSON")
    updated = timed(
        lambda: api.put(f"/api/v1/workflows/{small}", json={"name": "big", "definition": too_big})
    )
    assert_refused(updated, "/definition", "as compact JSON")
    assert api.get(f"/api/v1/workflows/{small}").json()["latest_version"] == 1
    checked = timed(lambda: api.post("/api/v1/workflows/validate", json={"definition": too_big}))
    assert checked.status_code == 200 and checked.json()["valid"] is False
    assert [p["pointer"] for p in checked.json()["problems"]] == [""]
    assert "the limit is 1048576" in checked.json()["problems"][0]["message"]

    # Under the limit as sent, over it as stored: every node's defaults are filled in when it is saved.
    inflating = definition(*(set_node(f"s{i}", {"v": "x" * 1_860}) for i in range(498)))
    assert len(json.dumps(inflating, separators=(",", ":"))) < MAX_BYTES
    assert_refused(
        api.post("/api/v1/workflows", json={"name": "n", "definition": inflating}), "/definition", "as stored"
    )

    # One stored before the limit held (as the reported 1.53 MiB one was) is not copied.
    engine = create_engine(
        running_system.infra.database_url,
        connect_args={"options": f"-csearch_path={running_system.namespace}"},
    )
    try:
        stored, _ = insert_workflow(engine, api.tenant_id, too_big)  # type: ignore[attr-defined]
    finally:
        engine.dispose()
    copied = timed(lambda: api.post(f"/api/v1/workflows/{stored}/duplicate"))
    assert_refused(copied, "/path/workflow_id", "as stored")
    assert api.post(f"/api/v1/workflows/{small}/duplicate").status_code == 201
