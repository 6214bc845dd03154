"""Bulk actions and re-runs in headless Chromium (Debian's, through Playwright) against the real
gateway and orchestrator, Kafka and PostgreSQL: an operator cancels all running runs of a workflow
from its runs list after confirming their count, retries a failed run picked by its checkbox, and
re-runs a failed run with edited input from the run view, which then links the two runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.browser.test_workflow_builder import built_web, page, sign_in  # noqa: F401  (fixtures)
from tests.integration.test_run_bulk_and_rerun import DIVIDE_THEN_WAIT
from tests.support.api import provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.browser


@pytest.fixture
def running(infra: Infra, namespace: str) -> Iterator[System]:
    system = System(infra, namespace)
    try:
        system.start(("gateway", "orchestrator"))
        yield system
    finally:
        system.stop_all()


def run_in(api: httpx.Client, workflow_id: str, d: int, wanted: str) -> str:
    run_id = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": {"d": d}}).json()["run_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = api.get(f"/api/v1/runs/{run_id}")
        if answer.status_code == 200 and answer.json()["status"] == wanted:
            return run_id
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} never became {wanted}")


def test_an_operator_bulk_cancels_retries_a_picked_run_and_reruns_one_with_edited_input(
    running: System,
    page,  # noqa: F811
):
    from playwright.sync_api import expect

    admin = provision_tenant(running.infra, running.namespace, f"bulkui{uuid.uuid4().hex[:6]}")
    api = signed_in(running.url("gateway"), admin)
    workflow_id = api.post(
        "/api/v1/workflows", json={"name": "divide", "definition": DIVIDE_THEN_WAIT}
    ).json()["id"]
    waiting = {run_in(api, workflow_id, 2, "running") for _ in range(3)}
    failed = run_in(api, workflow_id, 0, "failed")

    base = running.url("gateway")
    sign_in(page, base, admin)
    page.goto(f"{base}/workflows/{workflow_id}/runs")
    rows = page.locator("#runs tbody tr")
    expect(rows).to_have_count(4)

    page.select_option("#run-status-filter", "running")
    expect(rows).to_have_count(3)
    page.click("#bulk-cancel-matching")
    expect(page.locator("#bulk-confirm-count")).to_have_text("3")
    expect(page.locator("#bulk-confirm")).to_contain_text("status running")
    page.click("#bulk-confirm-button")
    expect(page.locator("#bulk-tally")).to_have_text("Cancel: 3 cancelled.")
    for run_id in waiting:
        expect(page.locator(f'#bulk-results tr[data-run-id="{run_id}"]')).to_have_attribute(
            "data-outcome", "cancelled"
        )
    page.click("#bulk-close")
    expect(page.locator("#no-runs")).to_be_visible()  # no run of the workflow is running any more

    page.select_option("#run-status-filter", "")
    expect(rows).to_have_count(4)
    page.check(f'#runs tr[data-run-id="{failed}"] input.select-run')
    expect(page.locator("#bulk-selected-count")).to_have_text("1 selected")
    page.click("#bulk-retry-selected")
    expect(page.locator("#bulk-confirm-count")).to_have_text("1")
    page.click("#bulk-confirm-button")
    expect(page.locator(f'#bulk-results tr[data-run-id="{failed}"]')).to_have_attribute(
        "data-outcome", "retried"
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nodes = api.get(f"/api/v1/runs/{failed}").json()["nodes"]
        if next(n for n in nodes if n["node_id"] == "divide")["attempts"] == 2:
            break
        time.sleep(0.2)
    assert next(n for n in nodes if n["node_id"] == "divide")["attempts"] == 2

    page.goto(f"{base}/runs/{failed}")
    expect(page.locator("#run-status")).to_have_text("failed")
    page.click("#rerun-open")
    expect(page.locator("#rerun-input")).to_have_value('{\n  "d": 0\n}')
    page.fill("#rerun-input", '{"d": 5}')
    page.click("#rerun-submit")
    expect(page.locator("#rerun-of")).to_contain_text(failed[:8])
    expect(page.locator("#run-status")).to_have_text("running")
    rerun_id = page.url.rsplit("/", 1)[1]
    assert rerun_id != failed
    rerun = api.get(f"/api/v1/runs/{rerun_id}").json()
    assert rerun["trigger"]["data"] == {"d": 5} and rerun["rerun_of"] == failed
    page.click("#rerun-of a")
    expect(page.locator("#reruns")).to_contain_text(rerun_id[:8])
    api.post(f"/api/v1/runs/{rerun_id}/cancel")
