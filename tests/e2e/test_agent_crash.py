"""An agent's loop survives SIGKILLs of the node runner and of the orchestrator mid-loop.

Several runs of an ``ai_agent`` node ("find the open deals over 10,000 of batch B, mark each for
review and announce it") go through the real services against a loopback OpenAI-compatible server that
scripts the tool calls. While the loops are in flight, the node runner and the orchestrator are each
killed with SIGKILL twice and started again. Afterwards: every run completed with the model's answer;
each turn and each tool call is once in its run's log; no tool call ran under a key the log does not
hold (every record write is under its call's key, once; every HTTP call carries its call's key); and
exactly the deals asked for were marked."""

from __future__ import annotations

import json
import re
import signal
import time
from collections import Counter, defaultdict
from uuid import UUID

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from tests.support.api import provision_tenant, signed_in
from tests.support.network import Answer, ChatToolCall, ChatTurn, LoopbackServer, chat_route, grant_loopback
from tests.support.processes import System

pytestmark = pytest.mark.e2e

BATCHES = 8
DEALS_PER_BATCH = (
    {"amount": 25_000, "status": "open"},
    {"amount": 12_000, "status": "open"},
    {"amount": 5_000, "status": "open"},
    {"amount": 40_000, "status": "won"},
)
MARKED_PER_BATCH = 2
_BATCH = re.compile(r"batch (\d+)")


def scripted_model(notify_url: str):
    """The model: find the batch's deals, then update each and announce it (all in one turn), then answer."""

    def model(asked: dict) -> ChatTurn:
        messages = asked["messages"]
        batch = int(_BATCH.search(messages[1]["content"]).group(1))  # type: ignore[union-attr]
        results = [m for m in messages if m["role"] == "tool"]
        if not results:
            where = [
                {"field": "batch", "operator": "equals", "value": batch},
                {"field": "status", "operator": "equals", "value": "open"},
                {"field": "amount", "operator": "greater_than", "value": 10_000},
            ]
            arguments = {"pipeline": "deals", "where": where}
            return ChatTurn(tool_calls=(_call("c0", "find_records", arguments),), delay_seconds=0.1)
        if len(results) == 1:
            found = json.loads(results[0]["content"])["records"]
            calls = []
            for i, record in enumerate(found):
                update = {"pipeline": "deals", "record_id": record["id"], "data": {"review": True}}
                calls.append(_call(f"u{i}", "update_record", update))
                calls.append(_call(f"n{i}", "announce", {"url": f"{notify_url}?deal={record['id']}"}))
            return ChatTurn(tool_calls=tuple(calls), delay_seconds=0.1)
        return ChatTurn(f"batch {batch}: marked {len(results) // 2} deals", delay_seconds=0.1)

    return model


def _call(call_id: str, name: str, arguments: dict) -> ChatToolCall:
    return ChatToolCall(call_id, name, json.dumps(arguments))


def agent_workflow(notify_url: str) -> dict:
    def node(node_id: str, node_type: str, y: int, **data: object) -> dict:
        return {
            "id": node_id,
            "type": node_type,
            "position": {"x": 0, "y": y},
            "data": {"name": node_id, **data},
        }

    tools = [
        {"kind": "records", "pipelines": ["deals"], "actions": ["find", "update"]},
        {
            "kind": "http",
            "name": "announce",
            "description": "Announce a deal marked for review",
            "url_patterns": [notify_url + "*"],
        },
    ]
    return {
        "nodes": [
            node("start", "trigger", 0, kind="manual"),
            node(
                "agent",
                "ai_agent",
                100,
                task="Find the open deals over 10,000 of batch {{ trigger.batch }} in pipeline deals, "
                "mark each for review and announce it",
                tools=tools,
                timeout_seconds=20,
            ),
            node("done", "end", 200, output={"answer": "{{ nodes.agent.output.answer }}"}),
        ],
        "edges": [
            {"id": "a", "source": "start", "target": "agent"},
            {"id": "b", "source": "agent", "target": "done"},
        ],
        "settings": {"max_executions_per_hour": 100_000},
    }


def events_of(database: Engine, run_ids: list[UUID]) -> dict[UUID, list]:
    with database.connect() as connection:
        rows = connection.execute(
            text(
                "select run_id, type, payload from run_events where run_id = any(:ids) order by run_id, seq"
            ),
            {"ids": run_ids},
        ).all()
    found: dict[UUID, list] = defaultdict(list)
    for row in rows:
        found[row.run_id].append((row.type, row.payload))
    return found


def agent_events_so_far(database: Engine) -> int:
    with database.connect() as connection:
        return connection.execute(
            text("select count(*) from run_events where type like 'agent.tool_call_scheduled'")
        ).scalar_one()


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.02)


@pytest.mark.timeout(240)
def test_an_agent_loop_resumes_after_kills_without_running_a_tool_call_twice(
    system: System, tenant: str, server: LoopbackServer
):
    system.start(("gateway", "orchestrator", "node-runner"))
    account = provision_tenant(system.infra, system.namespace, tenant)
    grant_loopback(system.infra, system.namespace, tenant)
    api: httpx.Client = signed_in(system.url("gateway"), account)
    notify_url = f"{server.url}/notify"
    server.route("/notify", Answer(200, {"ok": True}, delay_seconds=0.3))
    server.route("/v1/chat/completions", chat_route(scripted_model(notify_url)))
    settings = {"base_url": f"{server.url}/v1", "model": "m", "api_key": "k", "allow_private_endpoint": True}
    assert api.put("/api/v1/settings/ai", json=settings).status_code == 200
    assert api.post("/api/v1/pipelines", json={"id": "deals", "name": "Deals"}).status_code == 201
    deals: dict[str, tuple[int, dict]] = {}
    for batch in range(BATCHES):
        for deal in DEALS_PER_BATCH:
            created = api.post("/api/v1/pipelines/deals/records", json={"data": {**deal, "batch": batch}})
            assert created.status_code == 201, created.text
            deals[created.json()["id"]] = (batch, deal)
    created = api.post(
        "/api/v1/workflows", json={"name": "Deal review", "definition": agent_workflow(notify_url)}
    )
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    assert api.post(f"/api/v1/workflows/{workflow_id}/activate", json={}).status_code == 200

    run_ids = []
    for batch in range(BATCHES):
        started = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": {"batch": batch}})
        assert started.status_code == 202, started.text
        run_ids.append(UUID(started.json()["run_id"]))

    database = create_engine(
        system.infra.database_url, connect_args={"options": f"-csearch_path={system.namespace}"}
    )
    try:
        exits = []
        # Kill mid-loop: once a given share of the drill's tool calls was scheduled, so each kill finds
        # loops in flight whatever the machine's speed.
        calls = BATCHES * (1 + 2 * MARKED_PER_BATCH)
        victims = ("node-runner", "orchestrator", "node-runner", "orchestrator")
        for number, victim in enumerate(victims):
            target = calls * (2 * number + 1) // (2 * len(victims))
            wait_for(
                lambda target=target: agent_events_so_far(database) >= target, 60, f"{target} tool calls"
            )
            exits.append(system.stop(victim, signal.SIGKILL))
            system.start((victim,))

        def finished() -> bool:
            statuses = [api.get(f"/api/v1/runs/{run_id}").json()["status"] for run_id in run_ids]
            return all(s not in ("running", "new") for s in statuses)

        wait_for(finished, 120, "every run ends")
        runs = {run_id: api.get(f"/api/v1/runs/{run_id}").json() for run_id in run_ids}
        logs = events_of(database, run_ids)
        with database.connect() as connection:
            executions = connection.execute(
                text(
                    "select run_id, node_id, attempt, node_type from runner_executions"
                    " where run_id = any(:ids)"
                ),
                {"ids": run_ids},
            ).all()
    finally:
        database.dispose()

    assert exits == [-signal.SIGKILL] * 4
    assert {r["status"] for r in runs.values()} == {"completed"}, {k: r["status"] for k, r in runs.items()}
    for batch, run_id in enumerate(run_ids):
        assert runs[run_id]["final_output"] == {"answer": f"batch {batch}: marked {MARKED_PER_BATCH} deals"}

    record_writes = Counter(
        (row.run_id, row.node_id) for row in executions if row.node_type == "record_update"
    )
    assert set(record_writes.values()) == {1}
    announce_keys: set[str] = set()
    for run_id, log in logs.items():
        types = Counter(kind for kind, _ in log)
        turns = [payload["turn"] for kind, payload in log if kind == "agent.turn_completed"]
        assert turns == [1, 2, 3], (run_id, turns)
        scheduled = [payload for kind, payload in log if kind == "agent.tool_call_scheduled"]
        keys = [payload["idempotency_key"] for payload in scheduled]
        assert len(keys) == len(set(keys)) == 1 + 2 * MARKED_PER_BATCH, (run_id, keys)
        calls = Counter((payload["turn"], payload["call_id"]) for payload in scheduled)
        assert set(calls.values()) == {1}
        updates = {p["step"] for p in scheduled if p["tool"] == "update_record"}
        assert {node_id for (rid, node_id) in record_writes if rid == run_id} == updates
        announce_keys |= {f"{run_id}:{p['step']}:1" for p in scheduled if p["tool"] == "announce"}
        assert types["agent.tool_call_finished"] == 1 + 2 * MARKED_PER_BATCH
        assert types["node.succeeded"] == 3  # start, agent, done: once each
    sent_keys = {
        r.headers.get("Idempotency-Key") or r.headers.get("idempotency-key")
        for r in server.received
        if r.path.startswith("/notify")
    }
    assert sent_keys == announce_keys  # every announcement under its call's key; none under another

    marked = {
        rid for rid in deals if api.get(f"/api/v1/pipelines/deals/records/{rid}").json()["data"].get("review")
    }
    wanted = {rid for rid, (_, deal) in deals.items() if deal["status"] == "open" and deal["amount"] > 10_000}
    assert marked == wanted
