"""Phase (g) of the end-to-end bench: what a ``respond_to_webhook`` node costs the caller, one caller at
a time (the shape n8n's webhook benchmark uses: the answer comes when the workflow has answered).

A workflow ``webhook -> set -> respond_to_webhook -> end`` is made through the API in the bench's
tenant. One caller on a keep-alive connection sends ``--respond-calls`` calls to it, then as many to the
bench's plain webhook workflow (answered 202 once the call is stored, before its run starts), taking
turns in blocks of 10 so both see the same machine. Figures: the HTTP answer time p50/p90/p99 of each,
and the difference of their p50s and p99s, which is what waiting for the run's answer adds: the
StartRun's trip through Kafka to the orchestrator, the run up to the respond node, and the
``webhook.responded`` event's trip back through ``runs.events`` to the gateway's live feed. Answers other
than the node's 200 (a 202: the run did not answer within the workflow's wait) are counted apart.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from bench.common import Figure, edge, node, percentile, print_figures
from bench.e2e_http import Connection

BLOCK = 10


def respond_definition() -> dict:
    return {
        "nodes": [
            node("start", "trigger", 0, kind="webhook"),
            node("vars", "set", 100, variables={"n": "{{ trigger.webhook.body.n }}"}),
            node("answer", "respond_to_webhook", 200, status=200, body={"n": "{{ vars.n }}", "ok": True}),
            node("done", "end", 300),
        ],
        "edges": [edge("start", "vars"), edge("vars", "answer"), edge("answer", "done")],
        "settings": {"max_executions_per_hour": 10_000_000, "webhook_response_wait_seconds": 10},
    }


def respond_workflow(gateway: str, token: str) -> tuple[str, str]:
    """The workflow's id and its webhook address, made and activated through the API."""
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=f"{gateway}/api/v1", headers=headers, timeout=30) as api:
        created = api.post("/workflows", json={"name": "bench respond", "definition": respond_definition()})
        created.raise_for_status()
        workflow = created.json()["id"]
        api.post(f"/workflows/{workflow}/activate", json={}).raise_for_status()
        url = api.get(f"/workflows/{workflow}/webhook").raise_for_status().json()["url"]
    return workflow, url


async def timed(connection: Connection, n: int) -> tuple[int, float]:
    body = json.dumps({"n": n}).encode()
    started = time.perf_counter()
    status, _ = await connection.post(body)
    return status, (time.perf_counter() - started) * 1000


async def respond_latency(bench, calls: int) -> list[Figure]:
    """Runs the phase against ``bench`` (``bench.e2e.Bench``) and prints and keeps its figures."""
    args, setup = bench.args, bench.setup
    workflow, url = await asyncio.to_thread(respond_workflow, args.gateway, setup.token)
    respond_url = args.gateway + httpx.URL(url).path
    answered, plain, other = [], [], 0
    respond_connection, plain_connection = Connection(respond_url), Connection(bench.hook_url)
    try:
        for n in range(-BLOCK, calls):  # one block first to warm both paths; not counted
            status, took = await timed(respond_connection, n)
            if n >= 0 and status == 200:
                answered.append(took)
            elif n >= 0:
                other += 1
            status, took = await timed(plain_connection, n)
            if n >= 0 and status == 202:
                plain.append(took)
    finally:
        await respond_connection.close()
        await plain_connection.close()
    figures = [
        Figure(
            f"respond_to_webhook answer p{q}",
            percentile(answered, q / 100),
            "ms",
            f"{len(answered)} answered 200",
        )
        for q in (50, 90, 99)
    ]
    figures += [Figure(f"plain webhook 202 p{q}", percentile(plain, q / 100), "ms") for q in (50, 90, 99)]
    figures += [
        Figure(
            f"added by waiting for the answer, p{q}",
            percentile(answered, q / 100) - percentile(plain, q / 100),
            "ms",
        )
        for q in (50, 99)
    ]
    if other:
        figures.append(Figure("answers other than 200", other, "", "202: the run did not answer in time"))
    title = f"(g) respond_to_webhook, one caller, {calls} calls"
    bench.results[title] = figures
    print_figures(title, figures)
    headers = {"Authorization": f"Bearer {setup.token}"}
    archive = f"{args.gateway}/api/v1/workflows/{workflow}/archive"
    await asyncio.to_thread(httpx.post, archive, headers=headers, timeout=30)
    return figures
