"""The approval service against real Kafka and PostgreSQL, with every other service running: real
runs pause at an approval node and continue along the handle the approvers' decisions choose."""

from __future__ import annotations

import secrets
import threading
import time
import uuid

import httpx
import pytest

from tests.support.api import Account, client, provision_tenant, signed_in, token_for
from tests.support.processes import System

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def admin_account(running_system: System) -> Account:
    return provision_tenant(running_system.infra, running_system.namespace, f"appr{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def api(running_system: System, admin_account: Account) -> httpx.Client:
    return signed_in(running_system.url("gateway"), admin_account)


def new_user(api: httpx.Client, admin: Account, roles: list[str]) -> Account:
    account = Account(
        admin.tenant_id, f"u{uuid.uuid4().hex[:8]}@{admin.tenant_id}.test", secrets.token_urlsafe(16)
    )
    created = api.post(
        "/api/v1/users", json={"email": account.email, "password": account.password, "roles": roles}
    )
    assert created.status_code == 201, created.text
    return account


def approver(system: System, account: Account) -> httpx.Client:
    return client(system.url("approval"), token_for(system.url("gateway"), account))


def user_id(system: System, account: Account) -> str:
    return signed_in(system.url("gateway"), account).get("/api/v1/me").json()["subject"]


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def start_approval_run(
    api: httpx.Client, ask: dict, data: dict | None = None, starter: httpx.Client | None = None
) -> str:
    nodes = [
        node("start", "trigger", kind="manual"),
        node(
            "ask",
            "approval",
            title="Ship order {{ trigger.order }}?",
            description="Total {{ trigger.total }}",
            **ask,
        ),
        node("ship", "end", output={"shipped": True}),
        node("stop", "end"),
        node("late", "end"),
    ]
    edges = [
        edge("start", "ask"),
        edge("ask", "ship", "approved"),
        edge("ask", "stop", "rejected"),
        edge("ask", "late", "timeout"),
    ]
    created = api.post(
        "/api/v1/workflows", json={"name": "shipping", "definition": {"nodes": nodes, "edges": edges}}
    )
    assert created.status_code == 201, created.text
    started = (starter or api).post(
        f"/api/v1/workflows/{created.json()['id']}/runs",
        json={"input": {"order": "A-17", "total": 420, **(data or {})}},
    )
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def pending_approval(inbox: httpx.Client, run_id: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = inbox.get("/api/v1/approvals")
        assert answer.status_code == 200, answer.text
        for item in answer.json():
            if item["run_id"] == run_id:
                return inbox.get(f"/api/v1/approvals/{item['id']}").json()
        time.sleep(0.2)
    raise AssertionError(f"no pending approval for run {run_id}")


def finished(api: httpx.Client, run_id: str, timeout: float = 45) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        run = answer.json() if answer.status_code == 200 else {}  # a 404 problem has a status too
        if run.get("status") not in (None, "running"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still running")


def statuses(run: dict) -> dict[str, str]:
    return {n["node_id"]: n["status"] for n in run["nodes"]}


def decide(
    inbox: httpx.Client, approval: dict, decision: str, note: str = "", snapshot_hash: str | None = None
) -> httpx.Response:
    body = {"decision": decision, "note": note, "snapshot_hash": snapshot_hash or approval["snapshot_hash"]}
    return inbox.post(f"/api/v1/approvals/{approval['id']}/decision", json=body)


def test_an_approver_of_the_role_approves_and_the_run_follows_approved(running_system, api, admin_account):
    alice = approver(running_system, new_user(api, admin_account, ["approver"]))
    run_id = start_approval_run(api, {"assignee": {"role": "approver"}})
    approval = pending_approval(alice, run_id)
    assert approval["title"] == "Ship order A-17?" and approval["description"] == "Total 420"
    assert approval["data"]["trigger"]["order"] == "A-17"
    answer = decide(alice, approval, "approved", "looks right")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "approved"
    run = finished(api, run_id)
    assert run["status"] == "completed"
    assert statuses(run)["ship"] == "succeeded" and statuses(run)["stop"] == "skipped"
    assert all(a["run_id"] != run_id for a in alice.get("/api/v1/approvals").json())
    trail = alice.get(f"/api/v1/approvals/{approval['id']}/audit").json()
    assert [entry["action"] for entry in trail] == ["requested", "approved"]
    assert trail[1]["detail"]["note"] == "looks right" and trail[1]["at"]


def test_a_rejection_with_a_note_follows_rejected(running_system, api, admin_account):
    account = new_user(api, admin_account, ["approver"])
    bob = approver(running_system, account)
    run_id = start_approval_run(api, {"assignee": {"user": account.email}})
    approval = pending_approval(bob, run_id)
    answer = decide(bob, approval, "rejected", "wrong address")
    assert answer.status_code == 200 and answer.json()["status"] == "rejected"
    run = finished(api, run_id)
    assert statuses(run)["stop"] == "succeeded" and statuses(run)["ship"] == "skipped"
    ask = next(n for n in run["nodes"] if n["node_id"] == "ask")
    assert ask["output"]["note"] == "wrong address"
    assert ask["output"]["decided_by"] == user_id(running_system, account)
    detail = bob.get(f"/api/v1/approvals/{approval['id']}").json()
    assert detail["status"] == "rejected" and detail["decisions"][0]["note"] == "wrong address"


def test_a_quorum_needs_that_many_different_approvers(running_system, api, admin_account):
    role = "approver"
    first, second, third = (approver(running_system, new_user(api, admin_account, [role])) for _ in range(3))
    run_id = start_approval_run(api, {"assignee": {"role": role}, "quorum": 2})
    approval = pending_approval(first, run_id)
    assert decide(first, approval, "approved").json()["status"] == "pending"
    again = decide(first, approval, "approved")
    assert again.status_code == 409 and again.json()["code"] == "already_decided"
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "running"
    assert decide(second, approval, "approved").json()["status"] == "approved"
    late = decide(third, approval, "approved")
    assert late.status_code == 409 and late.json()["code"] == "not_pending"
    assert statuses(finished(api, run_id))["ship"] == "succeeded"


def test_the_assignee_reassigns_and_only_the_new_assignee_decides(running_system, api, admin_account):
    first_account, second_account = (
        new_user(api, admin_account, ["approver"]),
        new_user(api, admin_account, ["approver"]),
    )
    first, second = approver(running_system, first_account), approver(running_system, second_account)
    run_id = start_approval_run(api, {"assignee": {"user": first_account.email}})
    approval = pending_approval(first, run_id)
    assert decide(second, approval, "approved").status_code == 403
    moved = first.post(
        f"/api/v1/approvals/{approval['id']}/reassign",
        json={"assignee": {"user": second_account.email}, "note": "on leave"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["assignee"] == {"user": user_id(running_system, second_account), "role": None}
    refused = decide(first, approval, "approved")
    assert refused.status_code == 403 and refused.json()["code"] == "not_assignee"
    assert decide(second, pending_approval(second, run_id), "approved").status_code == 200
    assert statuses(finished(api, run_id))["ship"] == "succeeded"
    actions = [
        (e["action"], e["actor"]) for e in second.get(f"/api/v1/approvals/{approval['id']}/audit").json()
    ]
    assert actions[1] == ("reassigned", user_id(running_system, first_account))
    assert actions[2] == ("approved", user_id(running_system, second_account))


def test_the_user_who_started_the_run_may_not_approve_it(running_system, api, admin_account):
    account = new_user(api, admin_account, ["approver", "operator"])
    inbox = approver(running_system, account)
    # The run is started by the approver themself; the gateway records who started it (the input
    # cannot claim it), so an input trying to name someone else changes nothing.
    starter = signed_in(running_system.url("gateway"), account)
    run_id = start_approval_run(
        api, {"assignee": {"role": "approver"}}, {"started_by": "someone-else"}, starter
    )
    approval = pending_approval(inbox, run_id)
    refused = decide(inbox, approval, "approved")
    assert refused.status_code == 403 and refused.json()["code"] == "self_approval"
    assert inbox.get(f"/api/v1/approvals/{approval['id']}").json()["status"] == "pending"


def test_of_two_concurrent_decisions_one_wins_and_the_other_gets_409(running_system, api, admin_account):
    inboxes = [approver(running_system, new_user(api, admin_account, ["approver"])) for _ in range(2)]
    run_id = start_approval_run(api, {"assignee": {"role": "approver"}})
    approval = pending_approval(inboxes[0], run_id)
    answers: list[httpx.Response] = []
    barrier = threading.Barrier(2)

    def vote(inbox: httpx.Client, decision: str) -> None:
        barrier.wait()
        answers.append(decide(inbox, approval, decision))

    threads = [
        threading.Thread(target=vote, args=(inbox, d)) for inbox, d in zip(inboxes, ("approved", "rejected"))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200, 409]
    winner = next(a for a in answers if a.status_code == 200).json()["status"]
    run = finished(api, run_id)
    assert statuses(run)["ship" if winner == "approved" else "stop"] == "succeeded"


def test_a_decision_on_a_stale_snapshot_is_refused(running_system, api, admin_account):
    inbox = approver(running_system, new_user(api, admin_account, ["approver"]))
    run_id = start_approval_run(api, {"assignee": {"role": "approver"}})
    approval = pending_approval(inbox, run_id)
    stale = decide(inbox, approval, "approved", snapshot_hash="0" * 64)
    assert stale.status_code == 409 and stale.json()["code"] == "stale_snapshot"
    assert decide(inbox, approval, "approved").status_code == 200


def test_another_tenants_approval_is_not_found(running_system, api, admin_account):
    inbox = approver(running_system, new_user(api, admin_account, ["approver"]))
    run_id = start_approval_run(api, {"assignee": {"role": "approver"}})
    approval = pending_approval(inbox, run_id)
    other_admin = provision_tenant(
        running_system.infra, running_system.namespace, f"othr{uuid.uuid4().hex[:6]}"
    )
    stranger = approver(running_system, other_admin)
    assert stranger.get(f"/api/v1/approvals/{approval['id']}").status_code == 404
    assert stranger.get(f"/api/v1/approvals/{approval['id']}/audit").status_code == 404
    assert decide(stranger, approval, "approved").status_code == 404
    assert (
        stranger.post(
            f"/api/v1/approvals/{approval['id']}/reassign", json={"assignee": {"role": "admin"}}
        ).status_code
        == 404
    )
    assert all(a["id"] != approval["id"] for a in stranger.get("/api/v1/approvals").json())
    assert inbox.get(f"/api/v1/approvals/{approval['id']}").json()["status"] == "pending"


def test_without_credentials_the_api_answers_401(running_system):
    assert httpx.get(f"{running_system.url('approval')}/api/v1/approvals").status_code == 401


def test_a_cancelled_runs_approval_is_closed_and_cannot_be_decided(running_system, api, admin_account):
    inbox = approver(running_system, new_user(api, admin_account, ["approver"]))
    run_id = start_approval_run(api, {"assignee": {"role": "approver"}})
    approval = pending_approval(inbox, run_id)
    assert api.post(f"/api/v1/runs/{run_id}/cancel", json={}).status_code in (200, 202)
    deadline = time.monotonic() + 20
    while inbox.get(f"/api/v1/approvals/{approval['id']}").json()["status"] != "closed":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    refused = decide(inbox, approval, "approved")
    assert refused.status_code == 409 and refused.json()["code"] == "not_pending"


def test_an_escalation_due_while_the_service_was_down_fires_after_its_restart(
    running_system, api, admin_account
):
    clerk_account, boss_account = (
        new_user(api, admin_account, ["approver"]),
        new_user(api, admin_account, ["approver"]),
    )
    clerk = approver(running_system, clerk_account)
    ask = {
        "assignee": {"user": clerk_account.email},
        "deadline_seconds": 2,
        "on_deadline": "escalate",
        "escalate_to": {"user": boss_account.email},
    }
    run_id = start_approval_run(api, ask)
    approval = pending_approval(clerk, run_id)
    assert running_system.stop("approval") == 0
    time.sleep(3)
    running_system.start(("approval",))
    boss = approver(running_system, boss_account)
    escalated = pending_approval(boss, run_id, timeout=20)
    assert escalated["id"] == approval["id"] and escalated["escalated_at"] is not None
    assert "escalated" in [e["action"] for e in escalated["history"]]
    assert decide(approver(running_system, clerk_account), escalated, "approved").status_code == 403
    assert decide(boss, escalated, "approved").status_code == 200
    assert statuses(finished(api, run_id))["ship"] == "succeeded"


def test_a_timeout_while_the_service_was_down_closes_the_approval_after_its_restart(
    running_system, api, admin_account
):
    account = new_user(api, admin_account, ["approver"])
    inbox = approver(running_system, account)
    run_id = start_approval_run(
        api, {"assignee": {"role": "approver"}, "deadline_seconds": 3, "on_deadline": "timeout"}
    )
    deadline = time.monotonic() + 30
    while not (found := inbox.get("/api/v1/approvals", params={"run_id": run_id}).json()):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    approval = inbox.get(f"/api/v1/approvals/{found[0]['id']}").json()
    assert running_system.stop("approval") == 0
    run = finished(api, run_id)
    assert statuses(run)["late"] == "succeeded" and statuses(run)["ship"] == "skipped"
    running_system.start(("approval",))
    inbox = approver(running_system, account)
    deadline = time.monotonic() + 20
    while inbox.get(f"/api/v1/approvals/{approval['id']}").json()["status"] != "timeout":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    refused = decide(inbox, approval, "approved")
    assert refused.status_code == 409 and refused.json()["code"] == "not_pending"


def test_metrics_count_pending_approvals_and_decisions(running_system):
    text = httpx.get(f"{running_system.url('approval')}/metrics").text
    assert "millrace_approvals_pending" in text
    assert "millrace_approval_time_to_decision_seconds_bucket" in text
    assert "millrace_approval_decisions_total" in text
