"""The agent issue's acceptance in headless Chromium: a user builds, from the palette, an agent workflow
(manual trigger -> AI agent -> end) that finds the open deals over 10,000 in pipeline ``deals`` and marks
them for review, with a records tool (find and update) set up in the agent's form; the tenant's AI
endpoint is the suite's loopback OpenAI-compatible server, scripted to call the tools as a model would.
The user runs it, watches the run view show the agent's transcript (each tool call with its arguments
and result, the answer, the tokens), and the API shows exactly those deals updated."""

from __future__ import annotations

import json
import re
import uuid
from urllib.parse import urlsplit

import pytest

from tests.browser.console_support import accessibility_problems
from tests.browser.test_workflow_builder import (
    built_web,
    connect,
    drop,
    field,
    node,
    page,
    select,
    sign_in,
)
from tests.support.api import provision_tenant, signed_in
from tests.support.network import ChatToolCall, ChatTurn, chat_route, grant_loopback, loopback_server
from tests.support.processes import ARTIFACTS, System

pytestmark = pytest.mark.browser
__all__ = ["built_web", "page"]  # the fixtures, shared with the builder's tests

TASK = "Find the open deals over 10,000 in pipeline deals and mark them for review (set review to true)."
DEALS = {
    "Acme renewal": {"status": "open", "amount": 12_000},
    "Globex pilot": {"status": "open", "amount": 8_000},
    "Initech rollout": {"status": "won", "amount": 25_000},
    "Umbrella expansion": {"status": "open", "amount": 15_500},
    "Hooli trial": {"status": "open", "amount": 10_000},
}
TO_REVIEW = {"Acme renewal", "Umbrella expansion"}
FIND = {
    "pipeline": "deals",
    "where": [
        {"field": "status", "operator": "equals", "value": "open"},
        {"field": "amount", "operator": "greater_than", "value": 10_000},
    ],
}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def scripted_model(request: dict) -> ChatTurn:
    """The agent's model, turn by turn from what it was sent: find the deals; update each record the
    find returned (by the ids in the tool's result, as a model reads them); then answer."""
    messages = request["messages"]
    turn = 1 + sum(1 for m in messages if m["role"] == "assistant")
    if turn == 1:
        return ChatTurn(
            tool_calls=(ChatToolCall("call_find", "find_records", json.dumps(FIND)),),
            prompt_tokens=120,
            completion_tokens=30,
        )
    if turn == 2:
        found = next(m for m in messages if m["role"] == "tool" and m["tool_call_id"] == "call_find")
        ids = list(dict.fromkeys(UUID.findall(found["content"])))
        calls = tuple(
            ChatToolCall(
                f"call_update_{i}",
                "update_record",
                json.dumps({"pipeline": "deals", "record_id": record_id, "data": {"review": True}}),
            )
            for i, record_id in enumerate(ids)
        )
        if not calls:
            return ChatTurn("I found no open deal over 10,000.", prompt_tokens=200, completion_tokens=10)
        return ChatTurn(tool_calls=calls, prompt_tokens=200, completion_tokens=40)
    updated = [m for m in messages if m["role"] == "tool" and m["tool_call_id"].startswith("call_update_")]
    return ChatTurn(
        f"Marked {len(updated)} open deals over 10,000 for review.", prompt_tokens=300, completion_tokens=15
    )


def test_a_user_builds_an_agent_that_marks_deals_and_reads_its_transcript_in_the_run_view(
    running_system: System, page
):
    from playwright.sync_api import expect

    base = running_system.url("gateway")
    admin = provision_tenant(running_system.infra, running_system.namespace, f"agent{uuid.uuid4().hex[:6]}")
    grant_loopback(running_system.infra, running_system.namespace, admin.tenant_id)
    api = signed_in(base, admin)
    assert api.post("/api/v1/pipelines", json={"id": "deals", "name": "Deals"}).status_code == 201
    ids: dict[str, str] = {}
    for name, data in DEALS.items():
        made = api.post("/api/v1/pipelines/deals/records", json={"data": {"name": name, **data}})
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]

    with loopback_server() as server:
        chat = chat_route(scripted_model)
        server.route("/v1/chat/completions", chat)
        settings = api.put(
            "/api/v1/settings/ai",
            json={
                "base_url": f"{server.url}/v1",
                "model": "scripted-agent",
                "api_key": "sk-agent",
                "allow_private_endpoint": True,
            },
        )
        assert settings.status_code == 200, settings.text

        # Build it from the palette: the agent's task and a records tool on pipeline deals (find, update).
        sign_in(page, base, admin)
        page.click("#new-workflow")
        page.wait_for_selector('[data-palette-type="ai_agent"]')
        page.fill("#workflow-name", "Mark big open deals for review")
        drop(page, "trigger", 420, 60)
        drop(page, "ai_agent", 420, 220)
        drop(page, "end", 420, 380)
        for node_id in ("trigger_1", "ai_agent_1", "end_1"):
            node(page, node_id).wait_for()
        connect(page, "trigger_1", None, "ai_agent_1")
        connect(page, "ai_agent_1", None, "end_1")
        select(page, "ai_agent_1")
        field(page, "/task").fill(TASK)
        page.click('#side-panel [data-add="/tools"][data-variant="records"]')
        page.click('#side-panel [data-add="/tools/0/pipelines"]')
        field(page, "/tools/0/pipelines/0").fill("deals")
        actions = field(page, "/tools/0/actions")
        assert actions.locator('input[data-option="find"]').is_checked()  # the default
        actions.locator('input[data-option="update"]').check()
        field(page, "/max_turns").fill("5")
        assert not accessibility_problems(page), accessibility_problems(page)  # the editor with the form
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "ai-agent-builder.png"), full_page=True)
        select(page, "end_1")
        page.wait_for_function(
            "document.querySelector('#problem-count').textContent === 'valid'", timeout=15_000
        )
        page.click("#save")
        page.wait_for_url(re.compile(r".*/workflows/[0-9a-f-]{36}$"))
        workflow_id = urlsplit(page.url).path.rsplit("/", 1)[1]
        saved = api.get(f"/api/v1/workflows/{workflow_id}").json()["definition"]
        agent = next(n for n in saved["nodes"] if n["id"] == "ai_agent_1")
        assert agent["type"] == "ai_agent"
        assert agent["data"]["task"] == TASK and agent["data"]["max_turns"] == 5
        [records_tool] = agent["data"]["tools"]  # saved with its defaults (no approval, 30 s)
        assert {k: records_tool[k] for k in ("kind", "pipelines", "actions", "approval")} == {
            "kind": "records",
            "pipelines": ["deals"],
            "actions": ["find", "update"],
            "approval": False,
        }

        # Run it and watch the agent work in the run view.
        page.click("#run")
        page.fill("#run-input", "{}")
        page.click("#start-run")
        page.wait_for_url(re.compile(r".*/runs/[0-9a-f-]{36}$"))
        run_id = urlsplit(page.url).path.rsplit("/", 1)[1]
        node(page, "ai_agent_1").locator(".wf-node-name").click()
        transcript = page.locator("#node-detail #agent-transcript")
        transcript.wait_for(timeout=30_000)
        expect(page.locator("#run-status")).to_have_text("completed", timeout=90_000)
        expect(page.locator("#detail-status")).to_have_text("succeeded")

        expect(transcript.locator(".agent-task")).to_contain_text("mark them for review")
        expect(transcript.locator(".agent-turn")).to_have_count(3)
        find = transcript.locator('[data-call="call_find"]')
        expect(find).to_have_attribute("data-tool", "find_records")
        expect(find).to_have_attribute("data-outcome", "succeeded")
        expect(find.locator(".agent-arguments")).to_contain_text('"greater_than"')
        for name in TO_REVIEW:  # the find's result, as the model saw it, names both deals
            expect(find.locator(".agent-result")).to_contain_text(ids[name])
        updates = transcript.locator('[data-tool="update_record"]')
        expect(updates).to_have_count(len(TO_REVIEW))
        for i in range(len(TO_REVIEW)):
            expect(updates.nth(i)).to_have_attribute("data-outcome", "succeeded")
            expect(updates.nth(i).locator(".agent-arguments")).to_contain_text('"review": true')
        answer = "Marked 2 open deals over 10,000 for review."
        expect(transcript.locator("#agent-answer")).to_have_text(answer)
        expect(transcript.locator("#agent-turns")).to_have_text("3")
        expect(transcript.locator("#agent-tool-calls")).to_have_text("3")
        expect(transcript.locator("#agent-usage")).to_contain_text("705 tokens")  # 150 + 240 + 315
        assert not accessibility_problems(page), accessibility_problems(page)  # the run view, transcript open
        page.screenshot(path=str(ARTIFACTS / "ai-agent-run.png"), full_page=True)

    # The model was offered the two record tools and was sent each turn's tool results.
    assert len(chat.requests) == 3
    first, second, third = chat.requests
    assert first["model"] == "scripted-agent"
    assert {t["function"]["name"] for t in first["tools"]} == {"find_records", "update_record"}
    assert [m["role"] for m in first["messages"]][-1] == "user" and TASK in first["messages"][-1]["content"]
    assert [m.get("tool_call_id") for m in second["messages"] if m["role"] == "tool"] == ["call_find"]
    assert sorted(m["tool_call_id"] for m in third["messages"] if m["role"] == "tool") == [
        "call_find",
        "call_update_0",
        "call_update_1",
    ]

    # Exactly the open deals over 10,000 were marked; the others are as they were.
    records = api.get("/api/v1/pipelines/deals/records", params={"limit": 50}).json()["items"]
    by_name = {r["data"]["name"]: r["data"] for r in records}
    assert set(by_name) == set(DEALS)
    for name, data in by_name.items():
        if name in TO_REVIEW:
            assert data == {"name": name, **DEALS[name], "review": True}, name
        else:
            assert data == {"name": name, **DEALS[name]}, name
    output = api.get(f"/api/v1/runs/{run_id}").json()
    agent_row = next(n for n in output["nodes"] if n["node_id"] == "ai_agent_1")
    assert agent_row["output"]["answer"] == answer
    assert agent_row["output"]["tool_calls"] == 3 and agent_row["output"]["turns"] == 3
