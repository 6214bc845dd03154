"""Every HTTP error of the gateway and the approval service is RFC 9457 problem JSON that matches the
operation's OpenAPI document: a 404, a 422, and a 503 while their PostgreSQL is unreachable (a real
outage: a proxy in front of the real database is cut, resetting every pooled connection)."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
import schemathesis

from tests.support.api import provision_tenant, token_for
from tests.support.faults import database_proxy, proxied_url
from tests.support.processes import System

pytestmark = pytest.mark.integration

PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "code", "errors"}

# (service, list path, one-item path template): the same operations on both services' APIs.
OPERATIONS = {
    "gateway": ("/api/v1/workflows", "/api/v1/workflows/{workflow_id}"),
    "approval": ("/api/v1/approvals", "/api/v1/approvals/{approval_id}"),
}


def assert_problem(
    schema: schemathesis.BaseSchema, template: str, answer: httpx.Response, status: int, code: str
) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert set(body) == PROBLEM_KEYS
    assert (body["status"], body["code"], body["type"]) == (status, code, f"urn:millrace:problem:{code}")
    assert body["instance"] == answer.request.url.path and body["detail"]
    operation = schema[template]["GET"]
    assert str(status) in operation.definition.raw["responses"], f"{template} does not declare {status}"
    operation.validate_response(answer)  # body and content type as the document declares them


def test_a_404_a_422_and_a_503_are_problem_details_the_openapi_document_declares(
    system: System, namespace: str
) -> None:
    with database_proxy(system.infra.database_url) as proxy:
        system.start(
            ("gateway", "approval"),
            extra_env={"MILLRACE_DATABASE_URL": proxied_url(system.infra.database_url, proxy)},
        )
        account = provision_tenant(system.infra, namespace, f"problems{uuid.uuid4().hex[:6]}")
        headers = {"Authorization": f"Bearer {token_for(system.url('gateway'), account)}"}
        schemas = {
            name: schemathesis.openapi.from_url(f"{system.url(name)}/openapi.json") for name in OPERATIONS
        }
        for name, (listing, one) in OPERATIONS.items():
            base = system.url(name)
            missing = httpx.get(base + one.split("{")[0] + str(uuid.uuid4()), headers=headers)
            assert_problem(schemas[name], one, missing, 404, "not_found")
            invalid = httpx.get(base + one.split("{")[0] + "not-a-uuid", headers=headers)
            assert_problem(schemas[name], one, invalid, 422, "invalid_request")
            assert invalid.json()["errors"][0]["pointer"].startswith("/path/")
            assert httpx.get(base + listing, headers=headers).status_code == 200

        proxy.cut()
        for name, (listing, _) in OPERATIONS.items():
            began = time.monotonic()
            down = httpx.get(system.url(name) + listing, headers=headers, timeout=30)
            took = time.monotonic() - began
            assert_problem(schemas[name], listing, down, 503, "unavailable")
            assert int(down.headers["retry-after"]) > 0
            assert took < 5, f"{name} took {took:.1f} s to say PostgreSQL is unreachable"
            assert "PostgreSQL" in down.json()["detail"]

        proxy.restore()
        for name, (listing, _) in OPERATIONS.items():
            deadline = time.monotonic() + 30
            while (answer := httpx.get(system.url(name) + listing, headers=headers)).status_code != 200:
                assert answer.status_code == 503, answer.text
                assert time.monotonic() < deadline, f"{name} did not recover: {answer.text}"
                time.sleep(0.5)
