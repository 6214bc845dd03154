"""The inbox in headless Chromium (Debian's, driven by Selenium with Debian's chromedriver): an
approver signs in, opens the pending approval of a real paused run, approves it, and the run
completes. Needs ``python3 deploy/local/infra.py install --only browser`` to have installed
chromium and chromium-driver."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.processes import ARTIFACTS, System

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture
def browser() -> Iterator[object]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail(
            "Debian's chromium and chromium-driver are missing: "
            "run python3 deploy/local/infra.py install --only browser",
            pytrace=False,
        )
    os.environ.setdefault("SE_OFFLINE", "true")
    os.environ.setdefault("SE_AVOID_BROWSER_DOWNLOAD", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="inbox-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def start_paused_run(api: httpx.Client) -> str:
    def node(node_id: str, node_type: str, **data) -> dict:
        return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}

    nodes = [
        node("start", "trigger", kind="manual"),
        node(
            "ask",
            "approval",
            assignee={"role": "approver"},
            title="Refund {{ trigger.customer }}?",
            description="Amount {{ trigger.amount }} EUR",
        ),
        node("refund", "end"),
        node("keep", "end"),
    ]
    edges = [
        {"id": "e1", "source": "start", "target": "ask"},
        {"id": "e2", "source": "ask", "target": "refund", "sourceHandle": "approved"},
        {"id": "e3", "source": "ask", "target": "keep", "sourceHandle": "rejected"},
    ]
    created = api.post(
        "/api/v1/workflows", json={"name": "refunds", "definition": {"nodes": nodes, "edges": edges}}
    )
    assert created.status_code == 201, created.text
    started = api.post(
        f"/api/v1/workflows/{created.json()['id']}/runs",
        json={"input": {"customer": "Ada <script>", "amount": 42, "lines": [{"sku": "X-1", "qty": 2}]}},
    )
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def test_an_approver_approves_a_paused_run_in_the_inbox_and_the_run_completes(
    running_system: System, browser
):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as shown
    from selenium.webdriver.support.ui import WebDriverWait

    admin = provision_tenant(running_system.infra, running_system.namespace, f"inbox{uuid.uuid4().hex[:6]}")
    api = signed_in(running_system.url("gateway"), admin)
    approver = Account(admin.tenant_id, f"approver@{admin.tenant_id}.test", secrets.token_urlsafe(16))
    assert (
        api.post(
            "/api/v1/users",
            json={"email": approver.email, "password": approver.password, "roles": ["approver"]},
        ).status_code
        == 201
    )
    run_id = start_paused_run(api)
    wait = WebDriverWait(browser, 20)
    base = running_system.url("approval")

    browser.get(f"{base}/approvals")
    wait.until(shown.presence_of_element_located((By.ID, "tenant"))).send_keys(approver.tenant_id)
    browser.find_element(By.ID, "email").send_keys(approver.email)
    browser.find_element(By.ID, "password").send_keys(approver.password)
    browser.find_element(By.ID, "sign-in").click()

    deadline = time.monotonic() + 30
    while not browser.find_elements(By.LINK_TEXT, "Refund Ada <script>?"):
        assert time.monotonic() < deadline, browser.page_source[-2000:]
        time.sleep(0.3)
        browser.refresh()
    assert "refunds" in browser.find_element(By.ID, "pending").text
    browser.find_element(By.LINK_TEXT, "Refund Ada <script>?").click()

    data = wait.until(shown.presence_of_element_located((By.ID, "data"))).text
    assert "X-1" in data and "42" in data
    browser.find_element(By.ID, "note").send_keys("refund approved")
    browser.save_screenshot(str(ARTIFACTS / "approval-inbox-detail.png"))
    browser.find_element(By.ID, "approve").click()
    wait.until(shown.text_to_be_present_in_element((By.ID, "status"), "approved"))
    assert "approved" in browser.find_element(By.ID, "history").text
    browser.save_screenshot(str(ARTIFACTS / "approval-inbox-approved.png"))

    deadline = time.monotonic() + 30
    while (run := api.get(f"/api/v1/runs/{run_id}").json())["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert run["status"] == "completed"
    assert {n["node_id"]: n["status"] for n in run["nodes"]}["refund"] == "succeeded"
