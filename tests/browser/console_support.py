"""Shared parts of the console's browser tests: one Chromium for a whole module, sign-in, and the
accessibility check (axe-core, from the web app's npm dev dependencies, injected into the page)."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.browser.test_workflow_builder import CHROMIUM, CHROMIUM_ARGS, WEB
from tests.support.processes import ARTIFACTS

AXE = WEB / "node_modules" / "axe-core" / "axe.min.js"
SHOTS = ARTIFACTS / "console"
BLOCKING = ("serious", "critical")


@contextmanager
def chromium() -> Iterator[object]:
    """One browser for a module's tests (each test opens its own context: own storage, own sign-in)."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
            shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def tab(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1500, "height": 950})
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        yield page
    finally:
        context.close()


def sign_in(page, base: str, account) -> None:
    page.goto(f"{base}/")
    page.fill("#tenant", account.tenant_id)
    page.fill("#email", account.email)
    page.fill("#password", account.password)
    page.click("#sign-in")
    page.wait_for_selector("nav[aria-label='main']")


def shot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def accessibility_problems(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now, one line each."""
    if not AXE.exists():
        raise AssertionError(f"{AXE} is missing: run services/gateway/web/build.sh (npm ci)")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "async () => { const r = await axe.run(document, {resultTypes: ['violations']});"
        " return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " targets: v.nodes.slice(0, 3).map(n => n.target.join(' '))})); }"
    )
    return [
        f"{v['impact']}: {v['id']} ({v['help']}) at {', '.join(v['targets'])}"
        for v in result
        if v["impact"] in BLOCKING
    ]
