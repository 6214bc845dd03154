"""A sub-workflow in the builder, in headless Chromium: the user drags a sub-workflow node from the
palette, points it at a workflow whose manual trigger declares its input as a JSON Schema, runs the
parent from the Run dialog, watches it finish in the live view, and follows the link to the child
run, which links back; the child workflow's Run dialog is a form of its schema's fields."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests.browser.test_workflow_builder import built_web, connect, drop, field, node, page, select, sign_in
from tests.support.api import provision_tenant, signed_in
from tests.support.processes import ARTIFACTS, System

pytestmark = pytest.mark.browser
__all__ = ["built_web", "page"]  # the fixtures, shared with the builder's tests

CHILD = {
    "nodes": [
        {
            "id": "start",
            "type": "trigger",
            "position": {"x": 300, "y": 40},
            "data": {
                "name": "Start",
                "kind": "manual",
                "input_schema": {
                    "type": "object",
                    "properties": {"n": {"type": "integer", "description": "a number to double"}},
                    "required": ["n"],
                },
            },
        },
        {
            "id": "done",
            "type": "end",
            "position": {"x": 300, "y": 200},
            "data": {"name": "Done", "output": {"twice": "{{ trigger.n * 2 }}"}},
        },
    ],
    "edges": [{"id": "e1", "source": "start", "target": "done"}],
}


def test_a_user_builds_a_workflow_with_a_sub_workflow_and_follows_its_run_to_the_child(
    running_system: System, page
):
    admin = provision_tenant(running_system.infra, running_system.namespace, f"subflow{uuid.uuid4().hex[:6]}")
    api = signed_in(running_system.url("gateway"), admin)
    base = running_system.url("gateway")
    created = api.post("/api/v1/workflows", json={"name": "Double it", "definition": CHILD})
    assert created.status_code == 201, created.text
    child_workflow = created.json()["id"]

    sign_in(page, base, admin)
    page.click("#new-workflow")
    page.wait_for_selector('[data-palette-type="sub_workflow"]')
    assert (
        page.locator('.palette-group:has(h3:text-is("Flow")) [data-palette-type="sub_workflow"]').count() == 1
    )
    page.fill("#workflow-name", "Calls a sub-workflow")
    drop(page, "trigger", 420, 70)
    drop(page, "sub_workflow", 420, 250)
    drop(page, "end", 420, 430)
    for node_id in ("trigger_1", "sub_workflow_1", "end_1"):
        node(page, node_id).wait_for()
    connect(page, "trigger_1", None, "sub_workflow_1")
    connect(page, "sub_workflow_1", None, "end_1")

    select(page, "sub_workflow_1")
    page.select_option("#sub-workflow-picker", child_workflow)  # by name, from the tenant's workflows
    page.click('#side-panel [data-add="/input"]')
    field(page, "/input#key0").fill("n")
    field(page, "/input/n").fill("{{ trigger.n }}")

    page.wait_for_function("document.querySelector('#problem-count').textContent === 'valid'", timeout=15_000)
    page.click("#save")
    page.wait_for_url(re.compile(r".*/workflows/[0-9a-f-]{36}$"))
    parent_workflow = urlsplit(page.url).path.rsplit("/", 1)[1]
    saved = api.get(f"/api/v1/workflows/{parent_workflow}").json()
    [call] = [n for n in saved["definition"]["nodes"] if n["type"] == "sub_workflow"]
    assert call["data"]["workflow_id"] == child_workflow and call["data"]["mode"] == "wait"

    page.click("#run")
    page.fill("#run-input", '{"n": 21}')
    page.click("#start-run")
    page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}$"))
    parent_run = urlsplit(page.url).path.rsplit("/", 1)[1]
    page.wait_for_selector("#run-status:has-text('completed')", timeout=30_000)
    page.wait_for_function(
        "document.querySelector('.react-flow__node[data-id=\"sub_workflow_1\"] .wf-node')"
        "?.getAttribute('data-status') === 'succeeded'",
        timeout=15_000,
    )
    node(page, "sub_workflow_1").locator(".wf-node-name").click()
    page.locator("#detail-output").wait_for()
    assert '"twice": 42' in page.locator("#detail-output").inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sub-workflow-run.png"), full_page=True)

    # From the node to the child run, and from the child back to the parent.
    page.click("a.detail-child-run")
    page.wait_for_url(re.compile(r".*/runs/(?!" + parent_run + r")[0-9a-f-]{36}$"))
    page.wait_for_selector("#run-status:has-text('completed')", timeout=30_000)
    page.click("a.parent-run")
    page.wait_for_url(re.compile(r".*/runs/" + parent_run + "$"))
    page.wait_for_selector("#run-children [data-child-run] a")
    assert page.locator("#run-children [data-child-run]").count() == 1

    # The child workflow's Run dialog is a form of its input_schema; what it refuses never leaves it.
    page.goto(f"{base}/workflows/{child_workflow}")
    node(page, "done").wait_for()
    page.click("#run")
    page.wait_for_selector("#run-input-form")
    page.click("#start-run")
    page.wait_for_selector("#run-input-form .field-error:has-text('required')")
    page.fill("#run-input-n", "5")
    page.click("#start-run")
    page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}$"))
    page.wait_for_selector("#run-status:has-text('completed')", timeout=30_000)
    assert '"twice": 10' in page.locator("#run-final-output").inner_text()
