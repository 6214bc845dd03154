"""A workflow with a wait_for_event node built from the palette in headless Chromium: manual trigger ->
wait for the signal "approve" -> end; its run waits in the live view until the signal is sent through
the API, then finishes there with the signal's body as the node's output."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests.browser.test_workflow_builder import (  # noqa: F401 - fixtures
    ARTIFACTS,
    built_web,
    connect,
    drop,
    field,
    node,
    page,
    select,
    sign_in,
    wait_for,
)
from tests.support.api import provision_tenant, signed_in
from tests.support.processes import System

pytestmark = pytest.mark.browser


def test_a_user_builds_a_wait_for_a_signal_from_the_palette_and_watches_the_signal_finish_the_run(
    running_system: System,
    page,  # noqa: F811 - the fixture imported above
):
    admin = provision_tenant(running_system.infra, running_system.namespace, f"waits{uuid.uuid4().hex[:6]}")
    api = signed_in(running_system.url("gateway"), admin)
    base = running_system.url("gateway")

    sign_in(page, base, admin)
    page.click("#new-workflow")
    page.wait_for_selector('[data-palette-type="wait_for_event"]')
    assert page.locator('[data-palette-type="respond_to_webhook"]').count() == 1
    page.fill("#workflow-name", "Wait for approval")
    drop(page, "trigger", 420, 70)
    drop(page, "wait_for_event", 420, 240)
    drop(page, "end", 420, 420)
    for node_id in ("trigger_1", "wait_for_event_1", "end_1"):
        node(page, node_id).wait_for()
    connect(page, "trigger_1", None, "wait_for_event_1")
    connect(page, "wait_for_event_1", "event", "end_1")

    select(page, "wait_for_event_1")
    field(page, "/signal_name").fill("approve")
    select(page, "end_1")
    page.wait_for_function("document.querySelector('#problem-count').textContent === 'valid'", timeout=15_000)
    page.click("#save")
    page.wait_for_url(re.compile(r".*/workflows/[0-9a-f-]{36}$"))
    workflow_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    saved = api.get(f"/api/v1/workflows/{workflow_id}").json()
    [wait] = [n for n in saved["definition"]["nodes"] if n["type"] == "wait_for_event"]
    assert wait["data"]["signal_name"] == "approve" and wait["data"]["event"] == "signal"
    edges = {(e["source"], e.get("sourceHandle"), e["target"]) for e in saved["definition"]["edges"]}
    assert ("wait_for_event_1", "event", "end_1") in edges
    page.click("#activate")
    page.wait_for_selector("#workflow-status:has-text('active')")

    page.click("#run")
    page.fill("#run-input", "{}")
    page.click("#start-run")
    page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}$"))
    run_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    state = lambda node_id: node(page, node_id).locator(".wf-node").get_attribute("data-status")
    wait_for(lambda: state("wait_for_event_1") == "waiting", what="the wait node to show as waiting")
    assert page.locator("#run-status").inner_text().strip().lower().startswith("running")

    sent = api.post(f"/api/v1/runs/{run_id}/signals/approve", json={"by": "ada"})
    assert sent.status_code == 202, sent.text
    page.wait_for_selector("#run-status:has-text('completed')", timeout=30_000)
    wait_for(lambda: state("end_1") == "succeeded", what="the end node to succeed")
    node(page, "wait_for_event_1").locator(".wf-node-name").click()
    output = page.locator("#detail-output")
    output.wait_for()
    assert '"by": "ada"' in output.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "wait-for-event-run.png"), full_page=True)
