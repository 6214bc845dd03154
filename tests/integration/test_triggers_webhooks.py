"""Webhook triggers through the real gateway: the 202 comes with the run id once the call's claim and its
run's StartRun are stored, and the StartRun reaches ``runs.commands`` straight from the gateway's
relay (no hop through the trigger service); JSON and form bodies; signatures; conditions; repeated
deliveries, one after the other and at the same moment; and every rejection answered with a clear 4xx
that stores nothing."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from millrace_common.contracts.messages.run_commands import StartRun
from millrace_common.contracts.messages.webhooks import signature

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


def webhook_runs(rig: Rig, workflow_id: str, count: int, timeout: float = 30) -> list[StartRun]:
    """The workflow's StartRuns on ``runs.commands`` once the gateway's webhook relay has published
    every stored call (its outbox rows go once Kafka acknowledged them): exactly ``count``."""
    deadline = time.monotonic() + timeout
    query = "select count(*) as n from outbox where producer like 'gateway-webhooks@%'"
    while rig.sql(query)[0]["n"]:
        assert time.monotonic() < deadline, "the gateway's webhook relay did not publish"
        time.sleep(0.05)
    found = rig.start_runs(workflow_id)
    assert len(found) == count, f"expected {count} StartRun(s), got {len(found)}: {found}"
    return found


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
    assert answer.json() == {
        "run_id": answer.json()["run_id"],
        "delivery_id": "order-7",
        "duplicate": False,
        "outcome": "started",
        "reason": None,
    }
    run_id = answer.json()["run_id"]

    # Already durable when answered: the delivery's claim and the run's StartRun were stored in one
    # statement (the gateway's relay publishes it), so no call waits for Kafka.
    [claim] = deliveries(rig, workflow)
    assert str(claim["run_id"]) == run_id and claim["outcome"] == "started"
    [run] = webhook_runs(rig, workflow, 1)
    assert str(run.run_id) == run_id
    assert run.tenant_id == rig.tenant
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
    [run] = webhook_runs(rig, workflow, 1)
    assert run.trigger.data["webhook"]["content_type"] == "form"
    assert run.trigger.data["webhook"]["body"] == {"name": "Ada", "tags": ["a", "b"]}


def test_a_repeated_delivery_id_gets_the_same_run_and_is_stored_once(rig: Rig):
    workflow = rig.active_workflow({"kind": "webhook"})
    url = hook_url(rig, workflow)
    first = httpx.post(url, json={"n": 1}, headers={"x-millrace-delivery": "evt-1"})
    again = httpx.post(url, json={"n": 1}, headers={"x-millrace-delivery": "evt-1"})
    other = httpx.post(url, json={"n": 2}, headers={"idempotency-key": "evt-2"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert again.json() == {
        "run_id": first.json()["run_id"],
        "delivery_id": "evt-1",
        "duplicate": True,
        "outcome": None,
        "reason": None,
    }
    assert other.json()["run_id"] != first.json()["run_id"]
    assert len(deliveries(rig, workflow)) == 2
    runs = webhook_runs(rig, workflow, 2)
    assert sorted(r.trigger.data["webhook"]["delivery_id"] for r in runs) == ["evt-1", "evt-2"]


def test_concurrent_calls_share_commits_and_a_delivery_id_sent_at_once_starts_one_run(rig: Rig):
    """Calls at the same moment are stored together (one statement for several calls); two of them with
    the same delivery id, even in the same statement, start one run, and both callers hold its id."""
    workflow = rig.active_workflow({"kind": "webhook"})
    url = hook_url(rig, workflow)
    ids = [f"burst-{n % 20}" for n in range(60)]  # each delivery id three times

    with httpx.Client() as client, ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(
            pool.map(lambda d: client.post(url, json={"d": d}, headers={"x-millrace-delivery": d}), ids)
        )
    assert {a.status_code for a in answers} == {202}
    by_delivery: dict[str, set[str]] = {}
    for answer in answers:
        by_delivery.setdefault(answer.json()["delivery_id"], set()).add(answer.json()["run_id"])
    assert all(len(runs) == 1 for runs in by_delivery.values()), by_delivery
    assert sorted(a.json()["duplicate"] for a in answers).count(False) == 20
    runs = webhook_runs(rig, workflow, 20)
    assert {str(r.run_id) for r in runs} == {next(iter(v)) for v in by_delivery.values()}


def test_a_signed_call_with_the_right_signature_is_accepted(rig: Rig):
    workflow = signed_workflow(rig)
    body = b'{"paid": true}'
    answer = httpx.post(hook_url(rig, workflow), content=body, headers=signed_headers(body))
    assert answer.status_code == 202, answer.text
    [run] = webhook_runs(rig, workflow, 1)
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
    assert webhook_runs(rig, workflow, 0) == []


def test_unknown_addresses_and_inactive_workflows_are_refused(rig: Rig):
    assert httpx.post(f"{rig.system.url('gateway')}/hooks/{'x' * 32}", json={}).status_code == 404
    workflow = rig.active_workflow({"kind": "webhook"})
    url = hook_url(rig, workflow)
    # Taken once, so the gateway remembers the address (MILLRACE_WEBHOOK_TARGET_FRESH_SECONDS): the
    # pause through the same gateway must still refuse the very next call.
    assert httpx.post(url, json={}).status_code == 202
    assert rig.api.post(f"/api/v1/workflows/{workflow}/pause").status_code == 200
    paused = httpx.post(url, json={})
    assert paused.status_code == 409 and paused.json()["code"] == "wrong_state"
    records = rig.active_workflow({"kind": "record_created"})
    assert httpx.post(hook_url(rig, records), json={}).status_code == 409
    assert len(deliveries(rig, workflow)) == 1


def test_webhook_conditions_filter_calls_and_the_filtered_call_is_recorded(rig: Rig):
    workflow = rig.active_workflow(
        {
            "kind": "webhook",
            "conditions": {"field": "trigger.webhook.body.event", "operator": "equals", "value": "paid"},
        }
    )
    url = hook_url(rig, workflow)
    refund = httpx.post(url, json={"event": "refund"})
    paid = httpx.post(url, json={"event": "paid"})
    assert refund.status_code == paid.status_code == 202
    # The caller learns at once whether its call starts a run, and why not.
    assert refund.json()["outcome"] == "filtered"
    assert refund.json()["reason"] == "the trigger's conditions do not hold for this call"
    assert paid.json()["outcome"] == "started"
    [run] = webhook_runs(rig, workflow, 1)
    assert run.trigger.data["webhook"]["body"] == {"event": "paid"}
    assert str(run.run_id) == paid.json()["run_id"]
    outcomes = {str(d["run_id"]): (d["outcome"], d["reason"]) for d in deliveries(rig, workflow)}
    assert outcomes == {
        refund.json()["run_id"]: ("filtered", "the trigger's conditions do not hold for this call"),
        paid.json()["run_id"]: ("started", None),
    }


def test_a_condition_that_cannot_be_evaluated_starts_no_run_and_says_why(rig: Rig):
    workflow = rig.active_workflow(
        {
            "kind": "webhook",
            "conditions": {"field": "trigger.webhook.body.amount", "operator": "greater_than", "value": 10},
        }
    )
    answer = httpx.post(hook_url(rig, workflow), json={"amount": "lots"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["outcome"] == "condition_error"
    assert "cannot be evaluated" in answer.json()["reason"]
    assert webhook_runs(rig, workflow, 0) == []
