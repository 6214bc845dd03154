"""Every page of the console in headless Chromium (Debian's, through Playwright), with one started
system and one browser for the module: each page loads, says what to do next when it is empty, is
screenshotted (test-artifacts/console/) and has no serious or critical accessibility violation
(axe-core). A viewer meets the pages with what their role cannot do hidden or disabled with the
reason."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.console_support import accessibility_problems, chromium, shot, sign_in, tab
from tests.browser.test_workflow_builder import built_web  # noqa: F401  (fixture)
from tests.support.api import Account, provision_tenant, signed_in
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
