"""Testing a node in the editor, in headless Chromium (Debian's, through Playwright): a user pins
sample data for the trigger, sees the pinned fields suggested in the code node's editor, tests the
code node and sees its output, and pins that output; no run is created."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.test_workflow_builder import (  # noqa: F401  (fixtures)
    built_web,
    field,
    node,
    page,
    select,
    sign_in,
)
from tests.support.api import provision_tenant, signed_in
from tests.support.processes import ARTIFACTS, System

pytestmark = pytest.mark.browser

CODE = 'def main():\n    return {"total": sum(line["n"] for line in trigger["lines"])}\n'


def totals_workflow() -> dict:
    return {
        "nodes": [
            {
                "id": "start",
                "type": "trigger",
                "position": {"x": 300, "y": 40},
                "data": {"name": "Start", "kind": "manual"},
            },
            {
                "id": "calc",
                "type": "code",
                "position": {"x": 300, "y": 220},
                "data": {"name": "Total", "code": CODE},
            },
            {"id": "done", "type": "end", "position": {"x": 300, "y": 420}, "data": {"name": "Done"}},
        ],
        "edges": [
            {"id": "e1", "source": "start", "target": "calc"},
            {"id": "e2", "source": "calc", "target": "done"},
        ],
    }


@pytest.fixture(scope="module")
def code_system(infra, module_namespace):
    running = System(infra, module_namespace)
    running.start(ready_timeout=240)
    yield running
    running.stop_all()


def test_pinned_sample_data_feeds_a_node_test_that_shows_its_output_without_a_run(
    code_system: System,
    page,  # noqa: F811
):
    admin = provision_tenant(code_system.infra, code_system.namespace, f"tests{uuid.uuid4().hex[:6]}")
    api = signed_in(code_system.url("gateway"), admin)
    base = code_system.url("gateway")
    created = api.post("/api/v1/workflows", json={"name": "Totals", "definition": totals_workflow()})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]

    sign_in(page, base, admin)
    page.goto(f"{base}/workflows/{workflow_id}")
    node(page, "start").wait_for()

    # Pin the trigger's sample data.
    select(page, "start")
    page.click("#pin-edit")
    page.fill("#pin-text", '{"lines": [{"n": 2}, {"n": 40}]}')
    page.click("#pin-save")
    page.wait_for_selector('#pinned-output:has-text("lines")')

    # The code node's editor suggests the context's names and the pinned fields, as Python.
    select(page, "calc")
    editor = field(page, "/code")
    editor.click()
    editor.press("End")
    editor.press("Control+End")
    editor.type("\n# trigger.li")
    page.wait_for_selector("#side-panel .suggestions:has-text('trigger[\"lines\"]')")
    editor.fill(CODE)

    # Test it: its output, at once.
    page.click("#test-node")
    page.wait_for_selector('#node-test-result[data-status="succeeded"]')
    assert '"total": 42' in page.locator("#node-test-output").inner_text()
    page.click("#pin-result")
    page.wait_for_selector('#pinned-output:has-text("total")')
    page.screenshot(path=str(ARTIFACTS / "node-testing.png"), full_page=True)

    pins = {p["node_id"]: p["output"] for p in api.get(f"/api/v1/workflows/{workflow_id}/pins").json()}
    assert pins == {
        "start": {"lines": [{"n": 2}, {"n": 40}]},
        "calc": {"result": {"total": 42}, "printed": ""},
    }
    runs = api.get("/api/v1/runs", params={"workflow_id": workflow_id}).json()
    assert runs["items"] == []
