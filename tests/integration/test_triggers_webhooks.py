"""Webhook triggers through the real gateway and trigger service: the 202 comes with the run id once
the call is in Kafka; JSON and form bodies; signatures; repeated deliveries; and every rejection
answered with a clear 4xx that stores nothing."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from millrace_common.contracts.messages.webhooks import WEBHOOK_MESSAGE, WebhookReceived, signature
from millrace_common.contracts.topics import WEBHOOKS_INBOUND

from tests.integration.test_triggers_fixtures import Rig, rig_fixture, trigger_system_fixture  # noqa: F401 - fixtures

pytestmark = pytest.mark.integration

SECRET = "a-webhook-secret-for-tests-0123456789"


def hook_url(rig: Rig, workflow_id: str) -> str:
    answer = rig.api.get(f"/api/v1/workflows/{workflow_id}/webhook")
    assert answer.status_code == 200, answer.text
    token = answer.json()["url"].rsplit("/", 1)[1]
    return f"{rig.system.url('gateway')}/hooks/{token}"


def signed_workflow(rig: Rig, **trigger: object) -> str:
    created = rig.api.post(
        "/api/v1/credentials", json={"name": "hook-secret", "secret": {"kind": "hmac", "secret": SECRET}}
    )
    assert created.status_code == 201, created.text
    return rig.active_workflow(
        {"kind": "webhook", "require_signature": True, "secret_credential": "hook-secret", **trigger}
    )


def signed_headers(body: bytes, *, at: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = int(time.time()) if at is None else at
    return {
        "content-type": "application/json",
        "x-millrace-timestamp": str(stamp),
        "x-millrace-signature": signature(secret.encode(), stamp, body),
    }


def inbound(rig: Rig, workflow_id: str) -> list[WebhookReceived]:
    return [
        m
        for m in (WEBHOOK_MESSAGE.validate_json(v) for v in rig.read(WEBHOOKS_INBOUND))
        if str(m.workflow_id) == workflow_id
    ]


def deliveries(rig: Rig, workflow_id: str) -> list[dict]:
    return rig.sql("select * from webhook_deliveries where workflow_id = cast(:w as uuid)", w=workflow_id)


def test_a_json_call_is_answered_with_the_run_id_once_it_is_stored_and_starts_the_run(rig: Rig):
    workflow = rig.active_workflow({"kind": "webhook"})
    answer = httpx.post(
        hook_url(rig, workflow) + "?source=shop&tag=a&tag=b",
        json={"order": 7, "items": ["x"]},
        headers={"x-millrace-delivery": "order-7", "x-shop": "north"},
    )
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"run_id": answer.json()["run_id"], "delivery_id": "order-7", "duplicate": False}
    run_id = answer.json()["run_id"]

    # Already durable when answered: the delivery's claim and its message were stored in one
    # transaction (the gateway's relay publishes the message), so no call waits for Kafka.
    [claim] = deliveries(rig, workflow)
    assert str(claim["run_id"]) == run_id
    [run] = rig.wait_for_runs(workflow, 1, topic=WEBHOOKS_INBOUND)
    assert str(run.run_id) == run_id
    [call] = inbound(rig, workflow)
    assert str(call.run_id) == run_id
    assert call.tenant_id == rig.tenant
    assert run.trigger.kind == "webhook"
    hook = run.trigger.data["webhook"]
    assert hook["body"] == {"order": 7, "items": ["x"]}
    assert hook["query"] == {"source": "shop", "tag": ["a", "b"]}
    assert hook["headers"]["x-shop"] == "north"
    assert hook["delivery_id"] == "order-7"
    assert hook["signature_verified"] is False


def test_form_bodies_become_fields(rig: Rig):
    workflow = rig.active_workflow({"kind": "webhook"})
    answer = httpx.post(hook_url(rig, workflow), data={"name": "Ada", "tags": ["a", "b"]})
    assert answer.status_code == 202, answer.text
    [run] = rig.wait_for_runs(workflow, 1, topic=WEBHOOKS_INBOUND)
    assert run.trigger.data["webhook"]["content_type"] == "form"
    assert run.trigger.data["webhook"]["body"] == {"name": "Ada", "tags": ["a", "b"]}


def test_a_repeated_delivery_id_gets_the_same_run_and_is_stored_once(rig: Rig):
    workflow = rig.active_workflow({"kind": "webhook"})
    url = hook_url(rig, workflow)
    first = httpx.post(url, json={"n": 1}, headers={"x-millrace-delivery": "evt-1"})
    again = httpx.post(url, json={"n": 1}, headers={"x-millrace-delivery": "evt-1"})
    other = httpx.post(url, json={"n": 2}, headers={"idempotency-key": "evt-2"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json() == {"run_id": first.json()["run_id"], "delivery_id": "evt-1", "duplicate": True}
    assert other.json()["run_id"] != first.json()["run_id"]
    assert len(deliveries(rig, workflow)) == 2
    # The relay publishes after the answer: once both runs exist, both calls are in Kafka.
    assert sorted(
        r.trigger.data["webhook"]["delivery_id"]
        for r in rig.wait_for_runs(workflow, 2, topic=WEBHOOKS_INBOUND)
    ) == [
        "evt-1",
        "evt-2",
    ]
    assert len(inbound(rig, workflow)) == 2


def test_a_signed_call_with_the_right_signature_is_accepted(rig: Rig):
    workflow = signed_workflow(rig)
    body = b'{"paid": true}'
    answer = httpx.post(hook_url(rig, workflow), content=body, headers=signed_headers(body))
    assert answer.status_code == 202, answer.text
    [run] = rig.wait_for_runs(workflow, 1, topic=WEBHOOKS_INBOUND)
    assert run.trigger.data["webhook"]["signature_verified"] is True
    assert run.trigger.data["webhook"]["body"] == {"paid": True}


def rejections(body: bytes) -> dict[str, tuple[dict[str, str], bytes, int, str]]:
    now = int(time.time())
    good = signed_headers(body, at=now)
    return {
        "wrong signature": (
            {**good, "x-millrace-signature": signature(b"not the secret", now, body)},
            body,
            401,
            "wrong_signature",
        ),
        "body changed after signing": (good, body + b" ", 401, "wrong_signature"),
        "stale timestamp": (signed_headers(body, at=now - 301), body, 401, "stale_timestamp"),
        "timestamp from the future": (signed_headers(body, at=now + 400), body, 401, "stale_timestamp"),
        "no signature": (
            {"content-type": "application/json", "x-millrace-timestamp": str(now)},
            body,
            401,
            "missing_signature",
        ),
        "no timestamp": ({"content-type": "application/json"}, body, 401, "missing_timestamp"),
        "malformed signature": (
            {**good, "x-millrace-signature": "md5=abc"},
            body,
            401,
            "malformed_signature",
        ),
        "wrong content type": ({**good, "content-type": "text/plain"}, body, 415, "unsupported_media_type"),
        "oversized body": (
            signed_headers(b"x" * 300_000, at=now),
            b'"' + b"x" * 300_000 + b'"',
            413,
            "too_large",
        ),
        "invalid json": (signed_headers(b"{nope", at=now), b"{nope", 400, "invalid_body"),
    }


def test_every_rejected_call_gets_a_clear_4xx_and_nothing_is_stored(rig: Rig):
    workflow = signed_workflow(rig)
    url = hook_url(rig, workflow)
    body = b'{"paid": true}'
    for case, (headers, content, status, code) in rejections(body).items():
        answer = httpx.post(
            url, content=content, headers={**headers, "x-millrace-delivery": f"d-{uuid.uuid4().hex}"}
        )
        assert answer.status_code == status, f"{case}: {answer.status_code} {answer.text}"
        assert answer.json()["code"] == code, f"{case}: {answer.text}"
        assert answer.json()["detail"], case
    chunked = httpx.post(
        url,
        content=iter([b'"', b"y" * 200_000, b"y" * 100_000, b'"']),
        headers=signed_headers(b"", at=int(time.time())),
    )
    assert chunked.status_code == 413, "a body without a length is cut off at the cap too"
    assert deliveries(rig, workflow) == []
    assert inbound(rig, workflow) == []
    assert rig.wait_for_runs(workflow, 0, timeout=1, topic=WEBHOOKS_INBOUND) == []


def test_unknown_addresses_and_inactive_workflows_are_refused(rig: Rig):
    assert httpx.post(f"{rig.system.url('gateway')}/hooks/{'x' * 32}", json={}).status_code == 404
    workflow = rig.active_workflow({"kind": "webhook"})
    url = hook_url(rig, workflow)
    assert rig.api.post(f"/api/v1/workflows/{workflow}/pause").status_code == 200
    paused = httpx.post(url, json={})
    assert paused.status_code == 409 and paused.json()["code"] == "wrong_state"
    records = rig.active_workflow({"kind": "record_created"})
    assert httpx.post(hook_url(rig, records), json={}).status_code == 409
    assert deliveries(rig, workflow) == []


def test_webhook_conditions_filter_calls_and_the_filtered_call_is_recorded(rig: Rig):
    workflow = rig.active_workflow(
        {
            "kind": "webhook",
            "conditions": {"field": "trigger.webhook.body.event", "operator": "equals", "value": "paid"},
        }
    )
    url = hook_url(rig, workflow)
    assert httpx.post(url, json={"event": "refund"}).status_code == 202
    assert httpx.post(url, json={"event": "paid"}).status_code == 202
    rig.wait_until_settled(WEBHOOKS_INBOUND)
    [run] = rig.wait_for_runs(workflow, 1, topic=WEBHOOKS_INBOUND)
    assert run.trigger.data["webhook"]["body"] == {"event": "paid"}
    assert sorted(f["status"] for f in rig.firings(workflow)) == ["filtered", "started"]
