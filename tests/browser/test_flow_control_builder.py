"""The flow-control issue's acceptance in headless Chromium: a user builds, from the palette, a workflow
that calls a sub-workflow and then waits for a signal (manual trigger -> sub-workflow -> wait for event
-> end), runs it, watches the sub-workflow finish and the wait show as waiting in the live view, sends
the signal, and watches the run complete with both nodes' outputs."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests.browser.test_sub_workflow_builder import CHILD
from tests.browser.test_workflow_builder import (
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
from tests.support.processes import ARTIFACTS, System

pytestmark = pytest.mark.browser
__all__ = ["built_web", "page"]  # the fixtures, shared with the builder's tests


def test_a_user_builds_a_sub_workflow_then_a_wait_for_a_signal_and_watches_the_run_finish(
    running_system: System, page
):
    admin = provision_tenant(running_system.infra, running_system.namespace, f"flow{uuid.uuid4().hex[:6]}")
    api = signed_in(running_system.url("gateway"), admin)
    base = running_system.url("gateway")
    created = api.post("/api/v1/workflows", json={"name": "Double it", "definition": CHILD})
    assert created.status_code == 201, created.text
    child_workflow = created.json()["id"]

    sign_in(page, base, admin)
    page.click("#new-workflow")
    page.wait_for_selector('[data-palette-type="sub_workflow"]')
    page.fill("#workflow-name", "Double, then wait for a go")
    drop(page, "trigger", 420, 60)
    drop(page, "sub_workflow", 420, 200)
    drop(page, "wait_for_event", 420, 340)
    drop(page, "end", 420, 480)
    for node_id in ("trigger_1", "sub_workflow_1", "wait_for_event_1", "end_1"):
        node(page, node_id).wait_for()
    connect(page, "trigger_1", None, "sub_workflow_1")
    connect(page, "sub_workflow_1", None, "wait_for_event_1")
    connect(page, "wait_for_event_1", "event", "end_1")

    select(page, "sub_workflow_1")
    page.select_option("#sub-workflow-picker", child_workflow)
    page.click('#side-panel [data-add="/input"]')
    field(page, "/input#key0").fill("n")
    field(page, "/input/n").fill("{{ trigger.n }}")
    select(page, "wait_for_event_1")
    field(page, "/signal_name").fill("go")
    select(page, "end_1")
    page.wait_for_function("document.querySelector('#problem-count').textContent === 'valid'", timeout=15_000)
    page.click("#save")
    page.wait_for_url(re.compile(r".*/workflows/[0-9a-f-]{36}$"))
    workflow_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    saved = api.get(f"/api/v1/workflows/{workflow_id}").json()
    types = {n["id"]: n["type"] for n in saved["definition"]["nodes"]}
    assert types == {
        "trigger_1": "trigger",
        "sub_workflow_1": "sub_workflow",
        "wait_for_event_1": "wait_for_event",
        "end_1": "end",
    }

    page.click("#run")
    page.fill("#run-input", '{"n": 4}')
    page.click("#start-run")
    page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}$"))
    run_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    state = lambda node_id: node(page, node_id).locator(".wf-node").get_attribute("data-status")
    wait_for(lambda: state("sub_workflow_1") == "succeeded", what="the sub-workflow node to succeed")
    wait_for(lambda: state("wait_for_event_1") == "waiting", what="the wait node to show as waiting")
    assert page.locator("#run-status").inner_text().strip().lower().startswith("running")

    sent = api.post(f"/api/v1/runs/{run_id}/signals/go", json={"by": "grace"})
    assert sent.status_code == 202, sent.text
    page.wait_for_selector("#run-status:has-text('completed')", timeout=30_000)
    wait_for(lambda: state("end_1") == "succeeded", what="the end node to succeed")
    node(page, "sub_workflow_1").locator(".wf-node-name").click()
    page.locator("#detail-output").wait_for()
    assert '"twice": 8' in page.locator("#detail-output").inner_text()
    node(page, "wait_for_event_1").locator(".wf-node-name").click()
    wait_for(lambda: '"by": "grace"' in page.locator("#detail-output").inner_text(), what="the signal's body")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "flow-control-run.png"), full_page=True)
    children = api.get("/api/v1/runs", params={"parent_run_id": run_id}).json()
    assert [c["status"] for c in children["items"]] == ["completed"]
