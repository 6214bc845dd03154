"""The workflow builder in headless Chromium (Debian's, driven by Playwright with an explicit
executable path; no browser downloads): a user signs in, builds webhook trigger -> condition ->
set / http_request by dragging nodes from the palette and connecting their handles, fills the forms,
saves, activates, calls the webhook, watches the run go live, and opens the HTTP node's output."""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.support.api import provision_tenant, signed_in
from tests.support.network import Answer, Received, grant_loopback, loopback_server
from tests.support.processes import ARTIFACTS, System

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
WEB = Path(__file__).resolve().parents[2] / "services" / "gateway" / "web"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session", autouse=True)
def built_web() -> Path:
    """The gateway serves web/dist; build it when missing or older than its sources (session scope, so
    before any module's services start)."""
    if shutil.which("npm") is None:
        pytest.fail("npm is missing: the workflow builder cannot be built", pytrace=False)
    done = subprocess.run(["bash", str(WEB / "build.sh")], capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        pytest.fail(f"building the workflow builder failed:\n{output}", pytrace=False)
    return WEB / "dist"


@pytest.fixture
def page() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.fail(
            "Debian's chromium is missing: run python3 deploy/local/infra.py install --only browser",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="builder-chromium-")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
        )
        try:
            tab = browser.new_page()
            tab.set_default_timeout(20_000)
            yield tab
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)


def drop(page, node_type: str, x: int, y: int) -> None:
    """Drag a palette item onto the canvas, at (x, y) of the canvas pane."""
    page.locator(f'[data-palette-type="{node_type}"]').drag_to(
        page.locator(".react-flow__pane"), target_position={"x": x, "y": y}
    )


def node(page, node_id: str):
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def connect(page, source: str, handle: str | None, target: str) -> None:
    """Press on a source handle, move to the target's input handle and let go, as a user does."""
    selector = ".react-flow__handle.source" + (f'[data-handleid="{handle}"]' if handle else "")
    start = node(page, source).locator(selector).bounding_box()
    end = node(page, target).locator(".react-flow__handle.target").bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    steps = 12
    for i in range(1, steps + 1):
        page.mouse.move(
            start["x"] + (end["x"] - start["x"]) * i / steps + end["width"] / 2 * i / steps,
            start["y"] + (end["y"] - start["y"]) * i / steps + end["height"] / 2 * i / steps,
        )
    page.mouse.up()
    edges = page.locator(f'.react-flow__edge[data-id^="e_{source}_"]')
    assert edges.count() >= 1, f"no edge from {source}"


def select(page, node_id: str) -> None:
    node(page, node_id).locator(".wf-node-name").click()
    page.wait_for_selector(f'[data-panel-node="{node_id}"]')


def shows(locator, text: str) -> None:
    """The element comes to show exactly this text (React Flow hides a node until it is measured)."""
    from playwright.sync_api import expect

    expect(locator).to_have_text(text)


def field(page, pointer: str):
    return page.locator(f'#side-panel [data-field="{pointer}"]')


def wait_for(condition, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_user_builds_a_branching_workflow_runs_it_by_webhook_and_watches_it_live(
    running_system: System, page
):
    admin = provision_tenant(running_system.infra, running_system.namespace, f"builder{uuid.uuid4().hex[:6]}")
    grant_loopback(running_system.infra, running_system.namespace, admin.tenant_id)
    api = signed_in(running_system.url("gateway"), admin)
    base = running_system.url("gateway")

    with loopback_server() as server:
        server.route("/notify", Answer(200, {"ok": True, "seen": "small"}))

        page.goto(f"{base}/")
        page.fill("#tenant", admin.tenant_id)
        page.fill("#email", admin.email)
        page.fill("#password", admin.password)
        page.click("#sign-in")
        page.click("#new-workflow")
        page.wait_for_selector('[data-palette-type="http_request"]')
        palette = page.locator(".palette h3").all_inner_texts()
        assert [g.strip().lower() for g in palette] == [
            "triggers",
            "ai",
            "records",
            "logic",
            "flow",
            "external",
            "human",
        ]
        page.fill("#workflow-name", "Route by amount")

        drop(page, "trigger", 420, 70)
        drop(page, "condition", 420, 230)
        drop(page, "set", 200, 420)
        drop(page, "http_request", 660, 420)
        for node_id in ("trigger_1", "condition_1", "set_1", "http_request_1"):
            node(page, node_id).wait_for()

        # Problems show on nodes before saving: nothing is connected yet and the set has no variable.
        page.wait_for_function("document.querySelectorAll('.wf-node-problems').length >= 3")
        assert node(page, "set_1").locator(".wf-node-problems").is_visible()

        connect(page, "trigger_1", None, "condition_1")
        connect(page, "condition_1", "true", "set_1")
        connect(page, "condition_1", "false", "http_request_1")

        select(page, "trigger_1")
        field(page, "/kind").select_option("webhook")

        select(page, "condition_1")
        field(page, "/condition/field").fill("trigger.webhook.body.amount")
        field(page, "/condition/operator").select_option("greater_than")
        field(page, "/condition/value").fill("100")

        select(page, "set_1")
        page.wait_for_selector('#side-panel [data-error-for="/variables"]')
        page.click('#side-panel [data-add="/variables"]')
        field(page, "/variables#key0").fill("route")
        field(page, "/variables/route").fill("big")

        select(page, "http_request_1")
        field(page, "/method").select_option("POST")
        field(page, "/url").fill(f"{server.url}/notify")
        body = field(page, "/body")
        body.fill('{"amount": "{{ trigger.webhook.body.amount }}", "route": "small"}')

        page.wait_for_function(
            "document.querySelector('#problem-count').textContent === 'valid'", timeout=15_000
        )
        assert page.locator(".wf-node-problems").count() == 0
        page.click("#save")
        page.wait_for_url(re.compile(r".*/workflows/[0-9a-f-]{36}$"))
        workflow_id = urlsplit(page.url).path.rsplit("/", 1)[1]
        page.wait_for_selector("#workflow-status:has-text('draft')")
        page.click("#activate")
        page.wait_for_selector("#workflow-status:has-text('active')")

        saved = api.get(f"/api/v1/workflows/{workflow_id}").json()
        assert saved["active_version"] == 1 and saved["name"] == "Route by amount"
        edges = {(e["source"], e.get("sourceHandle"), e["target"]) for e in saved["definition"]["edges"]}
        assert edges == {
            ("trigger_1", None, "condition_1"),
            ("condition_1", "true", "set_1"),
            ("condition_1", "false", "http_request_1"),
        }

        hook = urlsplit(page.locator("#webhook-url").inner_text()).path
        page.click("a.button:has-text('Runs')")
        page.wait_for_selector("#no-runs")
        answer = httpx.post(f"{base}{hook}", json={"amount": 42}, timeout=10)
        assert answer.status_code in (200, 202), answer.text

        # The runs list follows the workflow's live stream; the new run appears without a reload.
        page.locator("tr[data-run-id]").first.click(timeout=30_000)
        page.wait_for_selector("#run-status:has-text('completed')", timeout=30_000)
        state = lambda node_id: node(page, node_id).locator(".wf-node").get_attribute("data-status")
        wait_for(lambda: state("http_request_1") == "succeeded", what="the HTTP node to succeed")
        assert state("trigger_1") == "succeeded"
        assert state("condition_1") == "succeeded"
        assert state("set_1") == "skipped"
        shows(node(page, "set_1").locator(".wf-node-state"), "skipped")

        node(page, "http_request_1").locator(".wf-node-name").click()
        output = page.locator("#detail-output")
        output.wait_for()
        assert '"status": 200' in output.inner_text()
        assert '"seen": "small"' in output.inner_text()
        assert '"amount": 42' in page.locator("#detail-input").inner_text()
        assert page.locator("#detail-attempts").inner_text() == "1"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "workflow-builder-run.png"), full_page=True)

        sent = server.requests_to("/notify")
        assert len(sent) == 1 and sent[0].method == "POST"
        assert sent[0].json() == {"amount": 42, "route": "small"}

    # The list shows the run's effect; a duplicate opens as a draft of its own, and archiving retires it.
    page.on("dialog", lambda dialog: dialog.accept())
    page.click(".topbar a:has-text('Workflows')")
    row = page.locator(f'tr[data-workflow-id="{workflow_id}"]')
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == "Route by amount" and "active" in cells[1] and cells[2].startswith("v1")
    assert cells[3] == "webhook" and "completed" in cells[4] and cells[5] == "1" and cells[6] == "100%"
    row.locator("button:has-text('Duplicate')").click()
    page.wait_for_url(re.compile(r".*/workflows/(?!" + workflow_id + r")[0-9a-f-]{36}$"))
    copy_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    node(page, "http_request_1").wait_for()
    assert page.input_value("#workflow-name") == "Route by amount (copy)"
    page.click(".topbar a:has-text('Workflows')")
    page.locator(f'tr[data-workflow-id="{copy_id}"] button:has-text("Archive")').click()
    page.wait_for_selector(f'tr[data-workflow-id="{copy_id}"] .status-archived')
    assert api.get(f"/api/v1/workflows/{copy_id}").json()["status"] == "archived"


def sign_in(page, base: str, account) -> None:
    page.goto(f"{base}/")
    page.fill("#tenant", account.tenant_id)
    page.fill("#email", account.email)
    page.fill("#password", account.password)
    page.click("#sign-in")
    page.wait_for_selector("#new-workflow")


def test_a_body_undo_versions_a_manual_run_and_a_retry_from_the_failed_node(running_system: System, page):
    admin = provision_tenant(running_system.infra, running_system.namespace, f"editor{uuid.uuid4().hex[:6]}")
    grant_loopback(running_system.infra, running_system.namespace, admin.tenant_id)
    api = signed_in(running_system.url("gateway"), admin)
    base = running_system.url("gateway")

    with loopback_server() as server:
        server.route("/flaky", [Answer(500, "down for a moment"), Answer(200, {"ok": True})])
        call = {
            "name": "Call",
            "method": "POST",
            "url": f"{server.url}/flaky",
            "body": {"who": "{{ trigger.who }}"},
            "retry": {"max_attempts": 1},
        }
        definition = {
            "nodes": [
                {
                    "id": "start",
                    "type": "trigger",
                    "position": {"x": 300, "y": 40},
                    "data": {"name": "Start", "kind": "manual"},
                },
                {"id": "call", "type": "http_request", "position": {"x": 300, "y": 200}, "data": call},
                {"id": "done", "type": "end", "position": {"x": 300, "y": 360}, "data": {"name": "Done"}},
            ],
            "edges": [
                {"id": "e1", "source": "start", "target": "call"},
                {"id": "e2", "source": "call", "target": "done"},
            ],
        }
        created = api.post("/api/v1/workflows", json={"name": "Flaky call", "definition": definition})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]

        sign_in(page, base, admin)
        page.goto(f"{base}/workflows/{workflow_id}")
        node(page, "call").wait_for()
        assert page.locator(".react-flow__node").count() == 3

        # A for_each is a group: a node dropped inside it joins its body and may read item and index.
        drop(page, "for_each", 900, 120)
        group = node(page, "for_each_1")
        group.wait_for()
        box = group.bounding_box()
        canvas = page.locator(".react-flow__pane").bounding_box()
        drop(page, "set", int(box["x"] - canvas["x"] + 150), int(box["y"] - canvas["y"] + 90))
        inner = node(page, "set_1")
        inner.wait_for()
        ibox, box = inner.bounding_box(), group.bounding_box()
        assert box["x"] <= ibox["x"] and ibox["x"] + ibox["width"] <= box["x"] + box["width"] + 1
        assert box["y"] <= ibox["y"] and ibox["y"] + ibox["height"] <= box["y"] + box["height"] + 1
        select(page, "set_1")
        assert "Inside the for_each" in page.locator("#side-panel").inner_text()
        page.click('#side-panel [data-add="/variables"]')
        value = field(page, "/variables/key1")
        value.click()
        value.type("{{ it")
        assert "item" in page.locator("#side-panel .suggestions").inner_text()

        # Undo takes the edits back one by one (keyboard and toolbar), redo replays them.
        page.locator(".react-flow__pane").click(position={"x": 20, "y": 20})
        page.keyboard.press("Control+z")
        page.click("button:has-text('Undo')")
        page.click("button:has-text('Undo')")
        wait_for(lambda: page.locator(".react-flow__node").count() == 3, what="undo to remove the group")
        page.click("button:has-text('Redo')")
        wait_for(lambda: node(page, "for_each_1").count() == 1, what="redo to bring the group back")
        page.click("button:has-text('Undo')")
        wait_for(lambda: page.locator(".react-flow__node").count() == 3, what="undo again")

        select(page, "call")
        field(page, "/name").fill("Call service")
        page.wait_for_function("document.querySelector('#problem-count').textContent === 'valid'")
        page.click("#save")
        page.wait_for_selector("#editor-message:has-text('Saved version 2')")

        page.click("#versions")
        page.wait_for_selector('#version-list [data-version="2"]')
        assert page.locator("#version-list li").count() == 2
        page.click('#version-list [data-version="1"] a:has-text("View")')
        page.wait_for_selector("#viewing-version")
        shows(node(page, "call").locator(".wf-node-name"), "Call")
        page.click("#activate")
        page.wait_for_selector("#workflow-status:has-text('active')")
        assert api.get(f"/api/v1/workflows/{workflow_id}").json()["active_version"] == 1

        page.click("#run")
        page.fill("#run-input", '{"who": "ada"}')
        page.click("#start-run")
        page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}$"))
        run_id = urlsplit(page.url).path.rsplit("/", 1)[1]
        page.wait_for_selector("#run-status:has-text('failed')", timeout=30_000)
        state = lambda node_id: node(page, node_id).locator(".wf-node").get_attribute("data-status")
        wait_for(lambda: state("call") == "failed", what="the call to fail")
        node(page, "call").locator(".wf-node-name").click()
        assert "http_status" in page.locator("#detail-error").inner_text()
        assert page.locator("#detail-attempts").inner_text() == "1"

        page.click("#retry-run")
        page.wait_for_selector("#run-status:has-text('completed')", timeout=30_000)
        wait_for(lambda: state("done") == "succeeded", what="the end node after the retry")
        node(page, "call").locator(".wf-node-name").click()
        page.wait_for_selector("#detail-attempts:has-text('2')")
        assert '"ok": true' in page.locator("#detail-output").inner_text()
        page.screenshot(path=str(ARTIFACTS / "workflow-builder-retry.png"), full_page=True)

        run = api.get(f"/api/v1/runs/{run_id}").json()
        assert run["status"] == "completed" and run["workflow_version"] == 1
        assert [r.json() for r in server.requests_to("/flaky")] == [{"who": "ada"}, {"who": "ada"}]

        page.goto(f"{base}/workflows/{workflow_id}/runs")
        page.wait_for_selector(f'tr[data-run-id="{run_id}"]')
        page.select_option("#run-status-filter", "failed")
        page.wait_for_selector("#no-runs")
        page.select_option("#run-status-filter", "completed")
        page.wait_for_selector(f'tr[data-run-id="{run_id}"]')

        page.click(f'h1 a[href="/workflows/{workflow_id}"]')
        page.click("#pause")
        page.wait_for_selector("#workflow-status:has-text('paused')")
        assert api.get(f"/api/v1/workflows/{workflow_id}").json()["active_version"] is None


def test_a_running_node_shows_as_running_and_the_run_can_be_cancelled(running_system: System, page):
    admin = provision_tenant(running_system.infra, running_system.namespace, f"cancel{uuid.uuid4().hex[:6]}")
    grant_loopback(running_system.infra, running_system.namespace, admin.tenant_id)
    api = signed_in(running_system.url("gateway"), admin)
    base = running_system.url("gateway")

    released = threading.Event()

    def held(_request: Received) -> Answer:
        # Held until the test has seen the node running and cancelled the run, however slowly the
        # page loads on a busy machine (a fixed 15 s delay could end before the page showed it).
        released.wait(120)
        return Answer(200, {"late": True})

    with loopback_server() as server, contextlib.ExitStack() as cleanup:
        cleanup.callback(released.set)  # whatever happens, the held call is let go
        server.route("/slow", held)
        definition = {
            "nodes": [
                {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
                {
                    "id": "wait",
                    "type": "http_request",
                    "position": {"x": 0, "y": 150},
                    "data": {"name": "Slow call", "url": f"{server.url}/slow", "timeout_seconds": 60},
                },
            ],
            "edges": [{"id": "e1", "source": "start", "target": "wait"}],
        }
        created = api.post("/api/v1/workflows", json={"name": "Slow", "definition": definition})
        assert created.status_code == 201, created.text
        started = api.post(f"/api/v1/workflows/{created.json()['id']}/runs", json={"input": {}})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]

        sign_in(page, base, admin)
        page.goto(f"{base}/runs/{run_id}")
        page.wait_for_selector(
            '.react-flow__node[data-id="wait"] .wf-node[data-status="running"]', timeout=30_000
        )
        assert node(page, "start").locator(".wf-node").get_attribute("data-status") == "succeeded"
        page.click("#cancel-run")
        page.wait_for_selector("#run-status:has-text('cancelled')", timeout=30_000)
        assert page.locator("#cancel-run").count() == 0
        assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "cancelled"


def test_the_form_fixture_matches_the_node_types_the_gateway_serves(running_system: System):
    """The Vitest form tests read a copy of the built-in types of /api/v1/node-types; a changed node
    model must refresh it. The plugins installed (which may be any) are not part of it, so installing
    one changes nothing outside its package."""
    import json

    from millrace_common.language.node_types import BUILT_IN
    from millrace_common.language.workflow_nodes import node_types

    registry = node_types()
    built_in = {t.type for t in registry if registry.sources[t.type] == BUILT_IN}
    admin = provision_tenant(running_system.infra, running_system.namespace, f"types{uuid.uuid4().hex[:6]}")
    served = signed_in(running_system.url("gateway"), admin).get("/api/v1/node-types").json()
    assert {t["type"] for t in served} >= built_in
    copy = json.loads((WEB / "src" / "test" / "node-types.json").read_text())
    expected = [t for t in served if t["type"] in built_in]
    assert copy == expected, "refresh services/gateway/web/src/test/node-types.json (see docs/ui.md)"
