"""A newcomer's journey through the console in headless Chromium, without curl or the CLI: sign in,
add a credential, point the tenant's AI at the suite's OpenAI-compatible server, create a pipeline
and a record, build an AI workflow with an approval in the editor, start it, watch it live, decide
its approval in the inbox from the run's waiting node, and see it complete. Screenshots of each step
go to test-artifacts/console/journey-*.png. (The operator's part, the tenant and its network policy
for the loopback model server, is done as an operator does it, before the journey.)"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.browser.console_support import accessibility_problems, chromium, shot, sign_in, tab
from tests.browser.test_workflow_builder import (  # noqa: F401  (built_web is a fixture)
    built_web,
    connect,
    drop,
    field,
    node,
    select,
)
from tests.support.api import provision_tenant
from tests.support.network import ChatTurn, chat_route, grant_loopback, loopback_server
from tests.support.processes import System

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as running:
        yield running


def test_a_newcomer_sets_up_builds_runs_and_approves_an_ai_workflow_in_the_browser(
    running_system: System, browser
):
    from playwright.sync_api import expect

    base = running_system.url("gateway")
    admin = provision_tenant(running_system.infra, running_system.namespace, f"new{uuid.uuid4().hex[:6]}")
    grant_loopback(running_system.infra, running_system.namespace, admin.tenant_id)
    asked: list[dict] = []

    def model(request: dict) -> ChatTurn:
        asked.append(request)
        return ChatTurn("Hello, Ada! Welcome aboard.", prompt_tokens=12, completion_tokens=6)

    with loopback_server() as server, tab(browser) as page:
        server.route("/v1/chat/completions", chat_route(model))
        sign_in(page, base, admin)
        shot(page, "journey-1-signed-in")

        # A credential: saved, listed, its secret never shown again.
        page.click("nav[aria-label='main'] a:has-text('Credentials')")
        page.fill("#credential-name", "crm")
        page.select_option("#credential-kind", "bearer")
        page.fill("#credential-token", "very-secret-token-1")
        page.click("#credential-save")
        expect(page.locator('tr[data-credential="crm"]')).to_contain_text("bearer")
        assert "very-secret-token-1" not in page.content()
        shot(page, "journey-2-credential")

        # The tenant's AI endpoint, model and key (write-only).
        page.click("nav[aria-label='main'] a:has-text('AI')")
        page.wait_for_selector("#no-ai-settings")
        page.fill("#ai-base-url", f"{server.url}/v1")
        page.fill("#ai-model", "journey-model")
        page.fill("#ai-api-key", "sk-journey")
        page.fill("#ai-budget", "100000")
        page.check("#ai-allow-private")
        page.click("#ai-save")
        expect(page.locator("#ai-key-state")).to_contain_text("A key is stored")
        assert page.locator("#ai-api-key").input_value() == ""
        shot(page, "journey-3-ai-settings")

        # A pipeline and a record.
        page.click("nav[aria-label='main'] a:has-text('Records')")
        page.fill("#pipeline-id", "leads")
        page.fill("#pipeline-name", "Leads")
        page.click("#pipeline-save")
        page.wait_for_selector("#no-records")
        page.click("#new-record")
        page.fill("#record-data", '{"name": "Ada", "plan": "pro"}')
        page.click("#record-save")
        expect(page.locator("#records tbody tr")).to_have_count(1)
        expect(page.locator("#records")).to_contain_text('"name":"Ada"')
        shot(page, "journey-4-record")

        # An AI workflow with an approval, built in the editor.
        page.click("nav[aria-label='main'] a:has-text('Workflows')")
        page.click("#new-workflow")
        page.wait_for_selector('[data-palette-type="ai_prompt"]')
        page.fill("#workflow-name", "Welcome a lead")
        drop(page, "trigger", 420, 60)
        drop(page, "ai_prompt", 420, 200)
        drop(page, "approval", 420, 340)
        drop(page, "end", 420, 480)
        for node_id in ("trigger_1", "ai_prompt_1", "approval_1", "end_1"):
            node(page, node_id).wait_for()
        connect(page, "trigger_1", None, "ai_prompt_1")
        connect(page, "ai_prompt_1", None, "approval_1")
        connect(page, "approval_1", "approved", "end_1")
        select(page, "ai_prompt_1")
        field(page, "/prompt").fill("Write a welcome for {{ trigger.name }}")
        select(page, "approval_1")
        field(page, "/title").fill("Send the welcome to {{ trigger.name }}?")
        field(page, "/assignee/role").fill("admin")
        field(page, "/allow_self_approval").check()
        page.wait_for_function(
            "document.querySelector('#problem-count').textContent === 'valid'", timeout=15_000
        )
        page.click("#save")
        page.wait_for_url(re.compile(r"/workflows/[0-9a-f-]{36}"))
        shot(page, "journey-5-editor")

        # Start it and watch it live, until it waits for the approval.
        page.click("#run")
        page.fill("#run-input", '{"name": "Ada"}')
        page.click("#start-run")
        page.wait_for_url(re.compile(r"/runs/[0-9a-f-]{36}"))
        expect(page.locator('[data-testid="state-approval_1"]')).to_contain_text(
            "waiting for approval", timeout=45_000
        )
        expect(page.locator('[data-testid="state-ai_prompt_1"]')).to_contain_text("succeeded")
        node(page, "approval_1").click()
        shot(page, "journey-6-waiting")
        page.click("#node-detail .approval-link")

        # Decide it in the inbox; the run completes.
        expect(page.locator("#approval-data")).to_be_visible()
        assert not accessibility_problems(page), accessibility_problems(page)
        shot(page, "journey-7-approval")
        page.click("#approve")
        expect(page.locator("#approval-status")).to_have_text("approved")
        page.click("dd a[href^='/runs/']")
        expect(page.locator("#run-status")).to_have_text("completed", timeout=45_000)
        duration = page.locator("#run-duration").inner_text()
        assert duration not in ("—", "0 ms"), duration
        shot(page, "journey-8-completed")

        # The model was asked through the tenant's endpoint with the stored key; usage shows.
        assert asked and asked[0]["model"] == "journey-model"
        page.click("nav[aria-label='main'] a:has-text('AI')")
        expect(page.locator("#ai-usage-tokens")).to_have_text("18")
