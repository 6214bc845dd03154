"""Every page of the console in headless Chromium (Debian's, through Playwright), with one started
system and one browser for the module: each page loads, says what to do next when it is empty, is
screenshotted (test-artifacts/console/) and has no serious or critical accessibility violation
(axe-core). A viewer meets the pages with what their role cannot do hidden or disabled with the
reason.

And a newcomer's journey, without curl or the CLI: sign in, add a credential, point the tenant's AI
at the suite's OpenAI-compatible server, create a pipeline and a record, build an AI workflow with an
approval in the editor, start it, watch it live, decide its approval in the inbox from the run's
waiting node, and see it complete (screenshots test-artifacts/console/journey-*.png). The operator's
part, the tenant and its network policy for the loopback model server, is done as an operator does
it, before the journey."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
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
from tests.support.api import Account, provision_tenant, signed_in
from tests.support.network import ChatTurn, chat_route, grant_loopback, loopback_server
from tests.support.processes import System

pytestmark = pytest.mark.browser

# (address, what shows once it has loaded, name of the screenshot)
PAGES = [
    ("/", "#workflows, .empty", "workflows"),
    ("/workflows/new", "#problem-count", "editor-empty"),
    ("/runs", "#all-runs-page", "runs"),
    ("/pipelines", "#pipelines-page", "pipelines"),
    ("/approvals", "#approvals-page", "approvals"),
    ("/tasks", "#tasks-page", "tasks"),
    ("/dead-letters", "#dead-letters, #no-dead-letters", "dead-letters"),
    ("/credentials", "#credentials-page", "credentials"),
    ("/settings/ai", "#ai-form", "ai-settings"),
    ("/users", "#users", "users"),
    ("/settings/network", "#network-page", "network-policy"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as running:
        yield running


@pytest.fixture(scope="module")
def admin(running_system: System) -> Account:
    return provision_tenant(running_system.infra, running_system.namespace, f"pages{uuid.uuid4().hex[:6]}")


@pytest.fixture(scope="module")
def api(running_system: System, admin: Account) -> Iterator[httpx.Client]:
    with signed_in(running_system.url("gateway"), admin) as client:
        yield client


def test_every_page_loads_says_what_to_do_next_and_has_no_serious_accessibility_violation(
    running_system: System, browser, admin: Account
):
    base = running_system.url("gateway")
    problems: dict[str, list[str]] = {}
    with tab(browser) as page:
        sign_in(page, base, admin)
        links = page.locator("nav[aria-label='main'] a").all_inner_texts()
        for label in (
            "Workflows",
            "Records",
            "Runs",
            "Approvals",
            "Tasks",
            "Credentials",
            "AI",
            "Network policy",
        ):
            assert label in links, links
        for address, ready, name in PAGES:
            page.goto(f"{base}{address}")
            page.wait_for_selector(ready)
            page.wait_for_load_state("networkidle")
            shot(page, name)
            found = accessibility_problems(page)
            if found:
                problems[address] = found
        page.goto(f"{base}/workflows/new")
        assert "drag a trigger" in page.locator("#problem-count").inner_text()
        assert page.locator("#canvas-empty").is_visible()
        page.goto(f"{base}/runs")
        page.wait_for_selector("#no-runs")
        assert "Activate a workflow" in page.locator("#no-runs").inner_text()
        page.goto(f"{base}/credentials")
        page.wait_for_selector("#no-credentials")
    assert not problems, "\n".join(f"{a}:\n  " + "\n  ".join(p) for a, p in problems.items())


def test_the_sign_out_button_is_readable_on_the_dark_bar(running_system: System, browser, admin: Account):
    with tab(browser) as page:
        sign_in(page, running_system.url("gateway"), admin)
        colours = page.evaluate(
            "() => { const b = document.querySelector('.topbar button.sign-out');"
            " const s = getComputedStyle(b); return [s.color, s.backgroundColor]; }"
        )
        assert colours[0] == "rgb(255, 255, 255)" and colours[1] in ("rgba(0, 0, 0, 0)", "transparent"), (
            colours
        )
        page.click("text=Sign out")
        page.wait_for_selector("#sign-in")


def test_a_viewer_sees_what_their_role_cannot_do_hidden_or_disabled_with_the_reason(
    running_system: System, browser, admin: Account, api: httpx.Client
):
    base = running_system.url("gateway")
    email = f"viewer-{uuid.uuid4().hex[:6]}@example.test"
    body = {"email": email, "password": "correct horse battery", "roles": ["viewer"]}
    assert api.post("/api/v1/users", json=body).status_code == 201
    workflow = api.post(
        "/api/v1/workflows",
        json={
            "name": "Seen by a viewer",
            "definition": {
                "nodes": [
                    {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
                    {"id": "end", "type": "end", "data": {"name": "End"}},
                ],
                "edges": [{"id": "e", "source": "start", "target": "end"}],
            },
        },
    ).json()
    viewer = Account(admin.tenant_id, email, "correct horse battery")
    with tab(browser) as page:
        sign_in(page, base, viewer)
        links = page.locator("nav[aria-label='main'] a").all_inner_texts()
        assert "Credentials" not in links and "Users & API keys" not in links and "Dead letters" not in links
        page.goto(f"{base}/workflows/{workflow['id']}")
        page.wait_for_selector("#run")
        assert page.locator("#run").is_disabled()
        assert "may start runs" in (page.locator("#run").get_attribute("title") or "")
        assert page.locator("#save").is_disabled()
        page.goto(f"{base}/credentials")
        note = page.locator(".not-allowed")
        assert "only admins may do this" in note.inner_text()
        page.goto(f"{base}/pipelines")
        page.wait_for_selector("#pipelines-page")
        assert page.locator("#pipeline-form").count() == 0
        assert "only admins and editors" in page.locator(".not-allowed").inner_text()
        shot(page, "viewer-pipelines")


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
        assert not accessibility_problems(page), accessibility_problems(page)  # the run view
        assert page.locator(".react-flow__minimap-node").count() == 4  # the minimap draws the nodes

        # The model was asked through the tenant's endpoint with the stored key; usage shows.
        assert asked and asked[0]["model"] == "journey-model"
        page.click("nav[aria-label='main'] a:has-text('AI')")
        expect(page.locator("#ai-usage-tokens")).to_have_text("18")
