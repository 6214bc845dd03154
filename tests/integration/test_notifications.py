"""Notifications that arrive, against every service running, a real SMTP server (``aiosmtpd``, started
on a free port by the test) and a loopback chat webhook: a ``task_notify`` node, an approval request
and its escalation are delivered by email and chat; an SMTP server that is down gets retries, each
recorded, and the message once it is up; two claimers never take the same notification at once."""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

import httpx
import pytest
from aiosmtpd.controller import Controller
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.db import create_engine
from millrace_common.platform.human_tables import (
    notification_attempts,
    notifications,
    tenant_notification_settings,
)
from millrace_common.platform.tables import tenants
from sqlalchemy import insert

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.network import Answer, LoopbackServer, grant_loopback
from tests.support.processes import System, free_port

pytestmark = pytest.mark.integration

FAST = {
    "MILLRACE_NOTIFICATION_POLL_SECONDS": "0.2",
    "MILLRACE_NOTIFICATION_RETRY_BASE_SECONDS": "0.3",
    "MILLRACE_NOTIFICATION_RETRY_MAX_SECONDS": "1",
    "MILLRACE_NOTIFICATION_MAX_ATTEMPTS": "50",
    "MILLRACE_PUBLIC_BASE_URL": "http://millrace.test",
    "MILLRACE_APPROVAL_BASE_URL": "http://inbox.millrace.test",
}


@dataclass
class Mailbox:
    """What the SMTP server accepted: (envelope recipients, the parsed message)."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope) -> str:
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for rcpt, m in self.messages if address in rcpt]


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.mailbox = Mailbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture(scope="module")
def notifying_system(infra, module_namespace) -> Iterator[System]:
    running = System(infra, module_namespace)
    running.start(extra_env=FAST, ready_timeout=300)
    yield running
    running.stop_all()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    server.start()
    yield server
    server.stop()


def node(node_id: str, node_type: str, **data) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


def new_user(api: httpx.Client, tenant: str, roles: list[str]) -> Account:
    account = Account(tenant, f"u{uuid.uuid4().hex[:8]}@{tenant}.test", secrets.token_urlsafe(16))
    created = api.post(
        "/api/v1/users", json={"email": account.email, "password": account.password, "roles": roles}
    )
    assert created.status_code == 201, created.text
    return account


def run_workflow(api: httpx.Client, nodes: list[dict], edges: list[dict]) -> str:
    created = api.post(
        "/api/v1/workflows", json={"name": "notify", "definition": {"nodes": nodes, "edges": edges}}
    )
    assert created.status_code == 201, created.text
    started = api.post(f"/api/v1/workflows/{created.json()['id']}/runs", json={"input": {"order": "A-17"}})
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def setup_tenant(system: System, smtp_port: int, chat_url: str | None) -> tuple[httpx.Client, str]:
    tenant = f"ntf{uuid.uuid4().hex[:8]}"
    admin = provision_tenant(system.infra, system.namespace, tenant)
    grant_loopback(system.infra, system.namespace, tenant)
    api = signed_in(system.url("gateway"), admin)
    body = {
        "email": {
            "enabled": True,
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "tls": "none",
            "from_address": "millrace@acme.test",
        },
        "chat": {"enabled": chat_url is not None, **({"webhook_url": chat_url} if chat_url else {})},
    }
    saved = api.put("/api/v1/settings/notifications", json=body)
    assert saved.status_code == 200, saved.text
    return api, tenant


def wait_for(check, timeout: float = 40, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def listed(api: httpx.Client, **params) -> list[dict]:
    answer = api.get("/api/v1/notifications", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def test_task_approval_request_and_escalation_arrive_by_email_and_chat(
    notifying_system: System, smtp: SmtpServer, server: LoopbackServer
):
    server.route("/hooks/chat", Answer(200, "ok"))  # what Slack answers
    api, tenant = setup_tenant(notifying_system, smtp.port, f"{server.url}/hooks/chat")
    clerk, boss = new_user(api, tenant, ["approver"]), new_user(api, tenant, ["approver"])
    nodes = [
        node("start", "trigger", kind="manual"),
        node(
            "tell",
            "task_notify",
            assignee={"user": clerk.email},
            title="Pack order {{ trigger.order }}",
            message="Pack it before noon",
        ),
        node(
            "ask",
            "approval",
            title="Ship order {{ trigger.order }}?",
            description="Ship it?",
            assignee={"user": clerk.email},
            deadline_seconds=2,
            on_deadline="escalate",
            escalate_to={"user": boss.email},
        ),
        node("done", "end"),
    ]
    edges = [edge("start", "tell"), edge("tell", "ask"), edge("ask", "done", "approved")]
    run_id = run_workflow(api, nodes, edges)

    delivered = wait_for(
        lambda: len(found := listed(api, status="delivered")) >= 6 and found,
        what="six delivered notifications in the API",
    )
    to_clerk, to_boss = smtp.mailbox.to(clerk.email), smtp.mailbox.to(boss.email)
    chat = server.requests_to("/hooks/chat")
    assert len(to_clerk) == 2 and len(to_boss) == 1 and len(chat) == 3

    task_mail = next(m for m in to_clerk if "Pack order A-17" in m["Subject"])
    request_mail = next(m for m in to_clerk if "Ship order A-17" in m["Subject"])
    assert task_mail["To"] == clerk.email and task_mail["From"] == "millrace@acme.test"
    assert task_mail["Subject"] == "New task: Pack order A-17"
    assert "Pack it before noon" in task_mail.get_payload()
    assert f"http://millrace.test/runs/{run_id}" in task_mail.get_payload()
    assert request_mail["Subject"] == "Approval requested: Ship order A-17?"
    approval_link = next(
        line
        for line in request_mail.get_payload().splitlines()
        if "http://inbox.millrace.test/approvals/" in line
    )
    assert to_boss[0]["Subject"] == "Approval escalated: Ship order A-17?"
    assert approval_link.split("Open it: ")[1].strip() in to_boss[0].get_payload()
    texts = [r.json()["text"] for r in chat]
    assert all(r.header("content-type") == "application/json" for r in chat)
    assert any("New task: Pack order A-17" in t and clerk.email in t for t in texts)
    assert any("Approval escalated" in t and boss.email in t for t in texts), texts
    by_channel = {(n["channel"], n["reason"]) for n in delivered}
    assert by_channel >= {
        ("email", "task"),
        ("email", "requested"),
        ("email", "escalated"),
        ("chat", "task"),
        ("chat", "requested"),
        ("chat", "escalated"),
    }
    one = api.get(f"/api/v1/notifications/{delivered[0]['id']}").json()
    assert one["attempts"] == 1 and one["delivered_at"] is not None
    assert [a["outcome"] for a in one["attempt_log"]] == ["delivered"]
    assert len(listed(api, channel="chat")) == 3
    # Each notification once: nothing more arrives on the next passes.
    time.sleep(1.5)
    assert len(smtp.mailbox.to(clerk.email)) == 2 and len(server.requests_to("/hooks/chat")) == 3

    other_api, _ = setup_tenant(notifying_system, smtp.port, None)
    foreign = other_api.get(f"/api/v1/notifications/{delivered[0]['id']}")
    assert foreign.status_code == 404 and foreign.json()["code"] == "not_found"
    assert listed(other_api) == []
    not_given_up = api.post(f"/api/v1/notifications/{delivered[0]['id']}/retry")
    assert not_given_up.status_code == 409 and not_given_up.json()["code"] == "wrong_state"


def test_an_smtp_server_that_is_down_gets_retries_then_the_message(notifying_system: System):
    down = SmtpServer(free_port())
    api, tenant = setup_tenant(notifying_system, down.port, None)
    clerk = new_user(api, tenant, ["approver"])
    nodes = [
        node("start", "trigger", kind="manual"),
        node("tell", "task_notify", assignee={"user": clerk.email}, title="Count the stock"),
    ]
    run_workflow(api, nodes, [edge("start", "tell")])

    failing = wait_for(
        lambda: [n for n in listed(api) if n["status"] == "failing" and n["attempts"] >= 2],
        what="a failing notification with two attempts",
    )[0]
    assert "could not be reached" in failing["last_error"] and "Connection refused" in failing["last_error"]
    down.start()
    try:
        wait_for(lambda: down.mailbox.to(clerk.email), what="the message once the server is up")
        detail = wait_for(
            lambda: (
                (d := api.get(f"/api/v1/notifications/{failing['id']}").json())["status"] == "delivered" and d
            ),
            what="the notification delivered",
        )
    finally:
        down.stop()
    outcomes = [a["outcome"] for a in detail["attempt_log"]]
    assert outcomes[-1] == "delivered" and outcomes[:-1] and set(outcomes[:-1]) == {"failed"}
    assert detail["attempts"] == len(outcomes) and detail["last_error"] is None
    assert all("could not be reached" in a["error"] for a in detail["attempt_log"][:-1])
    assert len(down.mailbox.to(clerk.email)) == 1


def test_settings_refuse_a_channel_without_what_it_needs(notifying_system: System):
    tenant = f"ntf{uuid.uuid4().hex[:8]}"
    api = signed_in(
        notifying_system.url("gateway"),
        provision_tenant(notifying_system.infra, notifying_system.namespace, tenant),
    )
    assert api.get("/api/v1/settings/notifications").json()["email"]["enabled"] is False
    no_host = api.put(
        "/api/v1/settings/notifications", json={"email": {"enabled": True, "from_address": "a@b.test"}}
    )
    no_url = api.put("/api/v1/settings/notifications", json={"chat": {"enabled": True}})
    no_login = api.put(
        "/api/v1/settings/notifications",
        json={
            "email": {
                "enabled": True,
                "smtp_host": "mail.test",
                "from_address": "a@b.test",
                "credential": "nope",
            }
        },
    )
    bad_cursor = api.get("/api/v1/notifications", params={"cursor": "garbage"})
    for answer, pointer in (
        (no_host, "/body/email/smtp_host"),
        (no_url, "/body/chat/webhook_url"),
        (no_login, "/body/email/credential"),
        (bad_cursor, "/query/cursor"),
    ):
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_request" and answer.json()["errors"][0]["pointer"] == pointer
    kept = api.put(
        "/api/v1/settings/notifications",
        json={"chat": {"enabled": True, "webhook_url": "https://chat.test/hook/x"}},
    )
    again = api.put("/api/v1/settings/notifications", json={"chat": {"enabled": True}})
    assert kept.status_code == 200 and again.status_code == 200
    assert again.json()["chat"] == {"enabled": True, "has_webhook_url": True}
    assert "chat.test" not in again.text


async def test_two_claimers_never_take_the_same_notification(infra, namespace):
    from millrace_node_runner.adapters import notification_store as store

    engine = create_engine(infra.settings(namespace))
    try:
        now = utc_now()
        async with engine.begin() as connection:
            await connection.execute(
                insert(notifications),
                [
                    {
                        "id": uuid.uuid4(),
                        "tenant_id": "t",
                        "source": "task",
                        "source_id": str(i),
                        "reason": "task",
                        "channel": "email",
                        "recipient": "a@b.test",
                        "subject": "s",
                        "body": "b",
                        "link": None,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(60)
                ],
            )

        async def claim_all() -> list[uuid.UUID]:
            taken: list[uuid.UUID] = []
            while True:
                async with engine.begin() as connection:
                    batch = await store.claim(
                        connection, now=utc_now(), lease_until=utc_now().replace(year=2100), batch=7
                    )
                    await asyncio.sleep(0.01)  # hold the locks a moment, so the claimers overlap
                if not batch:
                    return taken
                taken += [c.id for c in batch]

        first, second = await asyncio.gather(claim_all(), claim_all())
        assert not set(first) & set(second)
        assert len(first) + len(second) == 60 and first and second
    finally:
        await engine.dispose()


async def test_a_notification_claimed_by_a_process_that_died_is_sent_by_the_next_after_its_lease(
    infra, namespace, smtp: SmtpServer
):
    from datetime import timedelta

    from millrace_node_runner.adapters import notification_store as store
    from millrace_node_runner.adapters.http import HttpCaller
    from millrace_node_runner.adapters.network import GuardedClients, SystemResolver
    from millrace_node_runner.adapters.notification_channels import Channels
    from millrace_node_runner.adapters.tenants import TenantConfig
    from millrace_node_runner.domain.notifications import Retry
    from millrace_node_runner.service_layer.notifications import Notifications
    from millrace_node_runner.service_layer.plugins import GuardedHttp

    from tests.support.network import allow_loopback

    engine = create_engine(infra.settings(namespace))
    clients = GuardedClients(SystemResolver(), max_connections=4, max_idle_connections=2)
    now = [utc_now()]
    try:
        tenant, notification_id = f"t{uuid.uuid4().hex[:8]}", uuid.uuid4()
        async with engine.begin() as connection:
            await connection.execute(insert(tenants).values(id=tenant, name=tenant, created_at=now[0]))
        await allow_loopback(engine, tenant)
        async with engine.begin() as connection:
            await connection.execute(
                insert(tenant_notification_settings).values(
                    tenant_id=tenant,
                    email_enabled=True,
                    smtp_host="127.0.0.1",
                    smtp_port=smtp.port,
                    smtp_tls="none",
                    smtp_from="millrace@acme.test",
                    chat_enabled=False,
                    created_at=now[0],
                    updated_at=now[0],
                )
            )
            await connection.execute(
                insert(notifications).values(
                    id=notification_id,
                    tenant_id=tenant,
                    source="task",
                    source_id="1",
                    reason="task",
                    channel="email",
                    recipient="ada@acme.test",
                    subject="New task: t",
                    body="b",
                    link=None,
                    status="pending",
                    attempts=0,
                    next_attempt_at=now[0],
                    created_at=now[0],
                    updated_at=now[0],
                )
            )
        config = TenantConfig(engine, None)
        http = GuardedHttp(
            tenants, HttpCaller(clients, max_redirects=0, clock=utc_now), response_cap_ceiling=65536
        )
        runner = Notifications(
            engine,
            Channels(engine, None, config, http, SystemResolver()),
            lambda: now[0],
            retry=Retry(1, 1, 5),
            links=store.LinkBases("http://web.test", "http://inbox.test"),
            lookback=timedelta(hours=1),
            lease=timedelta(minutes=2),
        )
        # A process claims the notification and dies before it sends or records anything.
        async with engine.begin() as connection:
            died_with = await store.claim(
                connection, now=now[0], lease_until=now[0] + timedelta(minutes=2), batch=10
            )
        assert [c.id for c in died_with] == [notification_id]

        assert await runner.deliver_due() == 0  # the lease holds: nobody sends it meanwhile
        now[0] += timedelta(minutes=3)
        assert await runner.deliver_due() == 1

        assert [m["Subject"] for m in smtp.mailbox.to("ada@acme.test")] == ["New task: t"]
        async with engine.connect() as connection:
            row = (
                await connection.execute(notifications.select().where(notifications.c.id == notification_id))
            ).one()
            log = (
                await connection.execute(
                    notification_attempts.select().where(
                        notification_attempts.c.notification_id == notification_id
                    )
                )
            ).all()
        assert row.status == "delivered" and row.attempts == 2 and row.delivered_at == now[0]
        assert [(a.attempt, a.outcome) for a in log] == [(2, "delivered")]
    finally:
        await clients.aclose()
        await engine.dispose()
