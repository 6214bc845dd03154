"""The Notifications page in headless Chromium: an admin sets the tenant's channels on the page (an
SMTP server that is down, a loopback chat webhook), a ``task_notify`` node runs, and the page shows the
chat message delivered and the email given up with its reason and every attempt; once the SMTP server
is up, Retry on the page delivers it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.browser.test_workflow_builder import built_web, page, sign_in  # noqa: F401  (fixtures)
from tests.integration.test_notifications import SmtpServer, edge, node, run_workflow
from tests.support.api import provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.network import Answer, LoopbackServer, grant_loopback
from tests.support.processes import System, free_port

pytestmark = pytest.mark.browser

ENV = {
    "MILLRACE_NOTIFICATION_POLL_SECONDS": "0.2",
    "MILLRACE_NOTIFICATION_RETRY_BASE_SECONDS": "0.2",
    "MILLRACE_NOTIFICATION_RETRY_MAX_SECONDS": "0.5",
    "MILLRACE_NOTIFICATION_MAX_ATTEMPTS": "2",
}


@pytest.fixture
def running(infra: Infra, namespace: str) -> Iterator[System]:
    system = System(infra, namespace)
    system.start(("gateway", "orchestrator", "node-runner"), extra_env=ENV, ready_timeout=300)
    yield system
    system.stop_all()


def test_an_admin_sets_channels_sees_deliveries_and_retries_a_given_up_email(
    running: System,
    page,  # noqa: F811
    server: LoopbackServer,
):
    from playwright.sync_api import expect

    tenant = f"notes{uuid.uuid4().hex[:6]}"
    admin = provision_tenant(running.infra, running.namespace, tenant)
    grant_loopback(running.infra, running.namespace, tenant)
    server.route("/hooks/chat", Answer(200, "ok"))
    smtp = SmtpServer(free_port())

    base = running.url("gateway")
    sign_in(page, base, admin)
    page.click(".topbar a:has-text('Notifications')")
    page.wait_for_selector("#no-notifications")
    page.check("#ns-email-enabled")
    page.fill("#ns-host", "127.0.0.1")
    page.fill("#ns-port", str(smtp.port))
    page.select_option("#ns-tls", "none")
    page.fill("#ns-from", "millrace@acme.test")
    page.check("#ns-chat-enabled")
    page.click("#ns-save")
    expect(page.get_by_role("alert")).to_contain_text("chat notifications need a webhook URL")
    page.fill("#ns-webhook", f"{server.url}/hooks/chat")
    page.click("#ns-save")
    expect(page.locator("#ns-saved")).to_have_text("Saved.")
    expect(page.locator("#ns-webhook")).to_have_attribute("placeholder", "stored (type to replace)")

    api = signed_in(base, admin)
    nodes = [
        node("start", "trigger", kind="manual"),
        node("tell", "task_notify", assignee={"user": admin.email}, title="Check the stock"),
    ]
    run_workflow(api, nodes, [edge("start", "tell")])

    rows = page.locator("#notifications tbody tr")
    email_row = page.locator("#notifications tbody tr", has_text="email")
    for _ in range(100):
        page.click("#nt-refresh")
        if email_row.count() and "given_up" in email_row.inner_text():
            break
        page.wait_for_timeout(300)
    expect(rows).to_have_count(2)
    expect(page.locator("#notifications tbody tr", has_text="chat")).to_contain_text(
        "delivered after 1 attempt"
    )
    expect(email_row).to_contain_text(admin.email)
    expect(email_row).to_contain_text("given up after 2 attempts")
    expect(email_row).to_contain_text("could not be reached")

    page.select_option("#nt-status", "given_up")
    expect(rows).to_have_count(1)
    email_row.locator("a").click()
    expect(page.locator("#notification-detail")).to_contain_text("New task: Check the stock")
    expect(page.locator("#notification-attempts tbody tr")).to_have_count(2)
    smtp.start()
    try:
        page.click("#nt-retry")
        for _ in range(100):
            if smtp.mailbox.to(admin.email):
                break
            page.wait_for_timeout(200)
        assert smtp.mailbox.to(admin.email)[0]["Subject"] == "New task: Check the stock"
        page.select_option("#nt-status", "delivered")
        expect(rows).to_have_count(2)
        page.reload()
        expect(page.locator("#notification-attempts tbody tr")).to_have_count(3)
        expect(page.locator("#notification-detail")).to_contain_text("delivered")
    finally:
        smtp.stop()
