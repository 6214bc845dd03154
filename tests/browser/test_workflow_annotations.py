"""A workflow's own words in headless Chromium (Debian's, through Playwright): a user gives the
workflow a description and a constant, a node a description and an edge a label in the editor,
saves, activates and runs it; the run view shows the description and the label on the canvas, and
the set node's output has the constant rendered into it."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests.browser.test_workflow_builder import (  # noqa: F401  (fixtures)
    built_web,
    field,
    node,
    page,
    select,
    shows,
    sign_in,
    wait_for,
)
from tests.support.api import provision_tenant, signed_in
from tests.support.processes import ARTIFACTS, System

pytestmark = pytest.mark.browser


def greeting_workflow() -> dict:
    return {
        "nodes": [
            {
                "id": "start",
                "type": "trigger",
                "position": {"x": 300, "y": 40},
                "data": {"name": "Start", "kind": "manual"},
            },
            {
                "id": "greet",
                "type": "set",
                "position": {"x": 300, "y": 220},
                "data": {"name": "Greet", "variables": {"greeting": "hello"}},
            },
            {"id": "done", "type": "end", "position": {"x": 300, "y": 420}, "data": {"name": "Done"}},
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "greet"},
            {"id": "e2", "source": "greet", "target": "done"},
        ],
    }


def test_a_node_description_an_edge_label_and_a_workflow_constant_set_in_the_editor_show_in_a_run(
    running_system: System,
    page,  # noqa: F811
):
    admin = provision_tenant(running_system.infra, running_system.namespace, f"words{uuid.uuid4().hex[:6]}")
    api = signed_in(running_system.url("gateway"), admin)
    base = running_system.url("gateway")
    created = api.post("/api/v1/workflows", json={"name": "Greeter", "definition": greeting_workflow()})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]

    sign_in(page, base, admin)
    page.goto(f"{base}/workflows/{workflow_id}")
    node(page, "greet").wait_for()

    # The workflow: a description and a constant, in the panel shown when no node is selected.
    page.wait_for_selector("#workflow-owner")
    assert admin.email in page.locator("#workflow-owner").inner_text()
    page.fill("#workflow-description", "Greets whoever asks")
    page.click('#side-panel [data-add="settings/variables"]')
    field(page, "settings/variables/key1").fill("world")
    field(page, "settings/variables#key0").fill("audience")

    # The set node: a description, and a variable that reads the constant (one not declared is a
    # problem before saving).
    select(page, "greet")
    page.fill("#node-description", "Builds the greeting")
    field(page, "/variables/greeting").fill("hello {{ workflow.vars.audiense }}")
    page.wait_for_selector("#problem-count:has-text('1')")
    field(page, "/variables/greeting").fill("hello {{ workflow.vars.audience }}")
    shows(page.locator('[data-testid="description-greet"]'), "Builds the greeting")

    # The edge from it: a label, in the panel shown when an edge is selected.
    page.locator(".react-flow__pane").click(position={"x": 20, "y": 20})
    box = page.locator('.react-flow__edge[data-id="e2"] .react-flow__edge-path').bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_selector('[data-panel-edge="e2"]')
    page.fill("#edge-label", "then finish")
    page.wait_for_selector('.react-flow__edge[data-id="e2"] .react-flow__edge-text:has-text("then finish")')

    page.wait_for_function("document.querySelector('#problem-count').textContent === 'valid'")
    page.click("#save")
    page.wait_for_selector("#editor-message:has-text('Saved version 2')")
    stored = api.get(f"/api/v1/workflows/{workflow_id}").json()
    assert stored["description"] == "Greets whoever asks"
    assert stored["definition"]["settings"]["variables"] == {"audience": "world"}
    assert stored["definition"]["nodes"][1]["description"] == "Builds the greeting"
    assert stored["definition"]["edges"][1]["label"] == "then finish"

    page.click("#activate")
    page.wait_for_selector("#workflow-status:has-text('active')")
    page.click("#run")
    page.click("#start-run")
    page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}$"))
    run_id = urlsplit(page.url).path.rsplit("/", 1)[1]
    page.wait_for_selector("#run-status:has-text('completed')", timeout=30_000)

    shows(node(page, "greet").locator('[data-testid="description-greet"]'), "Builds the greeting")
    page.wait_for_selector('.react-flow__edge[data-id="e2"] .react-flow__edge-text:has-text("then finish")')
    state = lambda node_id: node(page, node_id).locator(".wf-node").get_attribute("data-status")
    wait_for(lambda: state("greet") == "succeeded", what="the set node to succeed")
    node(page, "greet").locator(".wf-node-name").click()
    page.wait_for_selector('#detail-output:has-text("hello world")')
    page.screenshot(path=str(ARTIFACTS / "workflow-annotations-run.png"), full_page=True)

    run = api.get(f"/api/v1/runs/{run_id}").json()
    [greet] = [n for n in run["nodes"] if n["node_id"] == "greet"]
    assert greet["output"] == {"greeting": "hello world"}

    page.goto(f"{base}/")
    page.wait_for_selector(f'tr[data-workflow-id="{workflow_id}"]')
    row = page.locator(f'tr[data-workflow-id="{workflow_id}"]').inner_text()
    assert "Greets whoever asks" in row
    assert admin.email in row
