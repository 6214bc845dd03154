"""The Dead letters page in headless Chromium (Debian's, through Playwright): two record events the
trigger could not process (its database role lost INSERT on ``trigger_firings``) are listed and
filtered; after the grant, an admin inspects one and replays it, and its run completes; the other is
discarded, and neither can be acted on again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.browser.test_workflow_builder import built_web, page, sign_in  # noqa: F401  (fixtures)
from tests.support.api import provision_tenant, signed_in
from tests.support.dead_letters import (
    dead_letters_by_record,
    grant_firings,
    record_workflow,
    revoke_firings,
    runs_of,
    system_with_trigger_role,
    wait_for_completed_run,
)
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.browser


@pytest.fixture
def running(infra: Infra, namespace: str) -> Iterator[System]:
    with system_with_trigger_role(infra, namespace) as system:
        yield system


def test_an_admin_filters_inspects_replays_and_discards_dead_letters_on_the_page(running: System, page):  # noqa: F811
    from playwright.sync_api import expect

    admin = provision_tenant(running.infra, running.namespace, f"letters{uuid.uuid4().hex[:6]}")
    api = signed_in(running.url("gateway"), admin)
    workflow_id = record_workflow(api, "orders")
    revoke_firings(running.infra, running.namespace)
    try:
        first = api.post("/api/v1/pipelines/orders/records", json={"data": {"n": 1}}).json()["id"]
        second = api.post("/api/v1/pipelines/orders/records", json={"data": {"n": 2}}).json()["id"]
        letters = dead_letters_by_record(api, 2)
        assert set(letters) == {first, second}
    finally:
        grant_firings(running.infra, running.namespace)

    base = running.url("gateway")
    sign_in(page, base, admin)
    page.click(".topbar a:has-text('Dead letters')")
    page.wait_for_selector("#dead-letters")
    rows = page.locator("#dead-letters tbody tr")
    expect(rows).to_have_count(2)

    page.fill("#dl-reason", "no such reason")
    page.wait_for_selector("#no-dead-letters")
    page.fill("#dl-reason", "permission denied")
    expect(rows).to_have_count(2)
    page.select_option("#dl-topic", "runs.commands")
    page.wait_for_selector("#no-dead-letters")
    page.select_option("#dl-topic", "records.events")
    page.fill("#dl-tenant", admin.tenant_id)
    expect(rows).to_have_count(2)

    page.click(f'tr[data-letter-id="{letters[first]}"] a')
    expect(page.locator("#dead-letter-reason")).to_contain_text("permission denied for table trigger_firings")
    expect(page.locator("#dead-letter-value")).to_contain_text(first)
    expect(page.locator("#dead-letter-state")).to_have_text("pending")
    page.click("#dl-replay")
    expect(page.locator("#dead-letter-state")).to_have_text("replayed")
    expect(page.locator("#dl-replay")).to_be_disabled()
    expect(page.locator("#dead-letter-outcome")).to_contain_text("replayed by user:")
    run = wait_for_completed_run(api, workflow_id)
    assert api.get(f"/api/v1/runs/{run['run_id']}").json()["trigger"]["data"]["record"]["id"] == first

    page.goto(f"{base}/dead-letters/{letters[second]}")  # the gateway answers the page's own address
    expect(page.locator("#dead-letter-value")).to_contain_text(second)
    page.click("#dl-discard")
    expect(page.locator("#dead-letter-state")).to_have_text("discarded")
    expect(page.locator("#dl-replay")).to_be_disabled()
    expect(page.locator("#dl-discard")).to_be_disabled()

    page.select_option("#dl-state", "pending")
    page.wait_for_selector("#no-dead-letters")
    page.select_option("#dl-state", "")
    expect(rows).to_have_count(2)
    expect(page.locator(f'tr[data-letter-id="{letters[first]}"] .badge')).to_have_text("replayed")
    expect(page.locator(f'tr[data-letter-id="{letters[second]}"] .badge')).to_have_text("discarded")
    assert [r["run_id"] for r in runs_of(api, workflow_id)] == [run["run_id"]]
