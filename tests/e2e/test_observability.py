"""The dashboards and alert rules against a real Prometheus scraping the real system.

Every service runs as a process; Debian's Prometheus scrapes them each second (a configuration
generated here, on free loopback ports, loading deploy/prometheus/rules/). A workload touches every
node class (AI against a loopback OpenAI-compatible server, HTTP, records, a task), an approval, a
failure, a retry of a node and of a run, a throttled run, a cancelled run, record and webhook
triggers and dead letters. Then every PromQL expression of every dashboard panel must return data,
and every rule must evaluate without error, through Prometheus's HTTP API. A panel that names a
metric no service exports fails the test."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml
from aiokafka import AIOKafkaProducer
from millrace_common.contracts.topics import NODES_READY_HTTP, RECORDS_EVENTS, Namespace

from tests.support.api import Account, client, provision_tenant, signed_in, token_for
from tests.support.kafka import kafka_client
from tests.support.network import (
    Answer,
    ChatTurn,
    LoopbackServer,
    chat_route,
    grant_loopback,
    loopback_server,
)
from tests.support.processes import System, free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((REPO / "deploy" / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((REPO / "deploy" / "prometheus" / "rules").glob("*.yml"))
# What Grafana would put in place of its variables: every tenant, and a window that spans the workload.
GRAFANA_VARIABLES = {"$__rate_interval": "10m", "$tenant": ".*"}
METRIC_NAME = re.compile(r"\b(millrace_[a-z0-9_]+|up)\b(?!\s*\()")


def local_infra_module():
    """deploy/local/infra.py (a script, not a package): its Prometheus configuration writer."""
    spec = importlib.util.spec_from_file_location(
        "millrace_local_infra", REPO / "deploy" / "local" / "infra.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@dataclass
class Prometheus:
    url: str
    process: subprocess.Popen

    def get(self, path: str, **params: str) -> dict:
        answer = httpx.get(f"{self.url}{path}", params=params, timeout=10)
        body = answer.json()
        assert answer.status_code == 200 and body["status"] == "success", (
            f"{path} {params}: {answer.text[:500]}"
        )
        return body["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]

    def value(self, expr: str) -> float:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else 0.0

    def wait_until(self, expr: str, holds: Callable[[float], bool], timeout: float = 30) -> float:
        """Waits until the scalar value of ``expr`` (0 when absent) satisfies ``holds``."""
        deadline = time.monotonic() + timeout
        while not holds(seen := self.value(expr)):
            assert time.monotonic() < deadline, f"{expr} is {seen}"
            time.sleep(0.5)
        return seen


def start_prometheus(system: System, workdir: Path) -> Prometheus:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail(
            "Debian's prometheus is not installed: `python3 deploy/local/infra.py install`", pytrace=False
        )
    config = workdir / "prometheus.yml"
    targets = {name: service.port for name, service in system.services.items()}
    config.write_text(
        local_infra_module().prometheus_config(targets, scrape_interval="1s", rule_files=RULE_FILES)
    )
    port = free_port()
    with open(workdir / "prometheus.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://127.0.0.1:{port}", process)
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{prometheus.url}/-/ready", timeout=1).status_code == 200:
                return prometheus
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(
                f"Prometheus did not start:\n{(workdir / 'prometheus.log').read_text()[-3000:]}"
            )
        time.sleep(0.2)


def stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def observed(system: System, tmp_path: Path) -> Iterator[tuple[System, Prometheus]]:
    system.start(extra_env={"MILLRACE_METRICS_INTERVAL_SECONDS": "1"})
    prometheus = start_prometheus(system, tmp_path)
    try:
        yield system, prometheus
    finally:
        stop_process(prometheus.process)


# -- the workload -----------------------------------------------------------------------------------


def node(node_id: str, node_type: str, **data: object) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def chain(*nodes: dict, **settings: object) -> dict:
    edges = [
        {"id": f"e{i}", "source": a["id"], "target": b["id"]}
        | ({"sourceHandle": "approved"} if a["type"] == "approval" else {})
        for i, (a, b) in enumerate(itertools.pairwise(nodes))
    ]
    return {"nodes": list(nodes), "edges": edges, **({"settings": settings} if settings else {})}


@dataclass
class Workload:
    system: System
    prometheus: Prometheus
    account: Account
    api: httpx.Client
    server: LoopbackServer

    def workflow(self, name: str, definition: dict, *, activate: bool = False) -> str:
        created = self.api.post("/api/v1/workflows", json={"name": name, "definition": definition})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        if activate:
            activated = self.api.post(f"/api/v1/workflows/{workflow_id}/activate", json={})
            assert activated.status_code == 200, activated.text
        return workflow_id

    def start(self, workflow_id: str, **data: object) -> str:
        started = self.api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": data})
        assert started.status_code == 202, started.text
        return started.json()["run_id"]

    def run(self, run_id: str) -> dict:
        answer = self.api.get(f"/api/v1/runs/{run_id}")
        return answer.json() if answer.status_code == 200 else {}  # a 404 problem has a status too

    def settled(self, run_id: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.run(run_id)
            if run.get("status") not in (None, "running"):
                return run
            time.sleep(0.2)
        raise AssertionError(f"run {run_id} still running: {self.run(run_id)}")

    def approve(self, run_id: str, timeout: float = 30) -> None:
        inbox = client(self.system.url("approval"), token_for(self.system.url("gateway"), self.account))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in inbox.get("/api/v1/approvals").json():
                if item["run_id"] == run_id:
                    approval = inbox.get(f"/api/v1/approvals/{item['id']}").json()
                    body = {
                        "decision": "approved",
                        "note": "fine",
                        "snapshot_hash": approval["snapshot_hash"],
                    }
                    answer = inbox.post(f"/api/v1/approvals/{item['id']}/decision", json=body)
                    assert answer.status_code == 200, answer.text
                    return
            run = self.run(run_id)
            assert run.get("status") in (None, "running"), f"the run ended before its approval: {run}"
            time.sleep(0.2)
        raise AssertionError(f"no approval for run {run_id}: {self.run(run_id)}")


def every_node_class(work: Workload) -> list[str]:
    """AI, HTTP (request and outgoing webhook), records, a task and an approval in one run; a record
    created by it also starts the record-triggered workflow."""
    work.workflow(
        "on new order",
        chain(node("new", "trigger", kind="record_created", pipeline_ids=["orders"]), node("done", "end")),
        activate=True,
    )
    everything = work.workflow(
        "everything",
        chain(
            node("start", "trigger", kind="manual"),
            node("summary", "ai_prompt", prompt="Summarise order {{ trigger.order }}"),
            node("notify", "http_request", method="POST", url=f"{work.server.url}/ok", body={"order": "A-1"}),
            node("tell", "webhook_out", url=f"{work.server.url}/ok", payload={"order": "A-1"}),
            node("save", "record_create", pipeline_id="orders", data={"order": "{{ trigger.order }}"}),
            node("task", "task_notify", assignee={"user": work.account.email}, title="Look at the order"),
            node(
                "ask",
                "approval",
                assignee={"user": work.account.email},
                title="Ship?",
                allow_self_approval=True,
            ),
            node("done", "end"),
        ),
    )
    run_id = work.start(everything, order="A-1")
    # While it waits, the gauges read from the database say so.
    work.prometheus.wait_until("max(millrace_runs_waiting_for_approval)", lambda v: v == 1)
    work.prometheus.wait_until("max(millrace_approvals_pending)", lambda v: v == 1)
    work.prometheus.wait_until("max(millrace_approval_oldest_pending_age_seconds)", lambda v: v > 0)
    work.approve(run_id)
    record = work.api.post("/api/v1/pipelines/orders/records", json={"data": {"order": "A-2"}})
    assert record.status_code == 201, record.text
    return [run_id]


def failures_and_retries(work: Workload) -> list[str]:
    """A node retried after a 503, a run failed by a 404 and then retried (and failed again)."""
    work.server.route("/flaky", [Answer(503, "busy"), Answer(200, {"ok": True})])
    work.server.route("/missing", Answer(404, "gone"))
    flaky = work.workflow(
        "flaky",
        chain(
            node("start", "trigger", kind="manual"),
            node(
                "call",
                "http_request",
                url=f"{work.server.url}/flaky",
                retry={"max_attempts": 3, "backoff_seconds": 0.2},
            ),
            node("done", "end"),
        ),
    )
    broken = work.workflow(
        "broken",
        chain(
            node("start", "trigger", kind="manual"),
            node("call", "http_request", url=f"{work.server.url}/missing"),
            node("done", "end"),
        ),
    )
    flaky_run, broken_run = work.start(flaky), work.start(broken)
    assert work.settled(broken_run)["status"] == "failed"
    retried = work.api.post(f"/api/v1/runs/{broken_run}/retry", json={})
    assert retried.status_code == 202, retried.text
    return [flaky_run, broken_run]


def limits_and_cancellation(work: Workload) -> list[str]:
    """A second run of a workflow allowed one an hour is throttled; a waiting run is cancelled."""
    limited = work.workflow(
        "limited",
        chain(node("start", "trigger", kind="manual"), node("done", "end"), max_executions_per_hour=1),
    )
    first = work.start(limited)
    work.settled(first)
    throttled = work.start(limited)
    waiting = work.workflow(
        "waiting",
        chain(
            node("start", "trigger", kind="manual"),
            node("pause", "wait_delay", duration_seconds=600),
            node("done", "end"),
        ),
    )
    paused = work.start(waiting)
    deadline = time.monotonic() + 30
    while not any(n["node_id"] == "pause" for n in work.run(paused).get("nodes", [])):
        assert time.monotonic() < deadline, "the delay never started"
        time.sleep(0.2)
    work.prometheus.wait_until("max(millrace_timers_pending)", lambda v: v >= 1)
    cancelled = work.api.post(f"/api/v1/runs/{paused}/cancel", json={"reason": "not needed"})
    assert cancelled.status_code == 202, cancelled.text
    return [first, throttled, paused]


def webhooks(work: Workload) -> None:
    hooked = work.workflow(
        "hooked", chain(node("start", "trigger", kind="webhook"), node("done", "end")), activate=True
    )
    address = work.api.get(f"/api/v1/workflows/{hooked}/webhook").json()["url"]
    path = "/hooks/" + address.rsplit("/hooks/", 1)[1]
    gateway = work.system.url("gateway")
    assert httpx.post(f"{gateway}{path}", json={"order": "A-3"}, timeout=10).status_code == 202
    assert httpx.post(f"{gateway}/hooks/{'x' * 20}", json={}, timeout=10).status_code == 404


def dead_letters(system: System) -> None:
    """Bytes that are no message, on a topic the trigger reads and on one the runner reads."""

    async def send() -> None:
        producer = AIOKafkaProducer(**kafka_client(system.infra.kafka_bootstrap))
        await producer.start()
        try:
            for topic in (RECORDS_EVENTS, NODES_READY_HTTP):
                await producer.send_and_wait(
                    Namespace(system.namespace).topic(topic), b"not a message", key=b"x"
                )
        finally:
            await producer.stop()

    asyncio.run(send())


def run_workload(system: System, prometheus: Prometheus, server: LoopbackServer) -> str:
    """Runs the workload; returns the id of the run that went through every node class."""
    tenant = f"obs-{uuid.uuid4().hex[:8]}"
    account = provision_tenant(system.infra, system.namespace, tenant)
    grant_loopback(system.infra, system.namespace, tenant)
    api = signed_in(system.url("gateway"), account)
    server.route("/ok", Answer(200, {"ok": True}))
    server.route("/v1/chat/completions", chat_route(lambda _asked: ChatTurn("A fine order.", 12, 4)))
    ai = api.put(
        "/api/v1/settings/ai",
        json={
            "base_url": f"{server.url}/v1",
            "model": "test-model",
            "api_key": "sk-test",
            "allow_private_endpoint": True,
        },
    )
    assert ai.status_code == 200, ai.text
    assert api.post("/api/v1/pipelines", json={"id": "orders", "name": "Orders"}).status_code == 201
    work = Workload(system, prometheus, account, api, server)
    runs = every_node_class(work) + failures_and_retries(work) + limits_and_cancellation(work)
    webhooks(work)
    dead_letters(system)
    outcomes = {run_id: work.settled(run_id)["status"] for run_id in runs}
    expected = ["completed", "completed", "failed", "completed", "throttled", "cancelled"]
    assert list(outcomes.values()) == expected, outcomes
    return runs[0]


# -- what the dashboards and rules ask for ------------------------------------------------------------


def panel_queries() -> list[tuple[str, str, str]]:
    """(dashboard, panel title, PromQL with Grafana's variables substituted) for every panel target."""
    found = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                found.append((path.stem, panel["title"], expr))
    return found


def rule_expressions() -> list[tuple[str, str]]:
    found = []
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                found.append((rule.get("alert") or rule["record"], rule["expr"]))
    return found


def wait_for_scrapes(prometheus: Prometheus, system: System, timeout: float = 60) -> None:
    """Every service scraped and its gauges collected after the workload, and rules evaluated."""
    deadline = time.monotonic() + timeout
    while True:
        up = prometheus.query('up{job="millrace"} == 1')
        services = {sample["metric"]["service"] for sample in up}
        dead = prometheus.value("sum(millrace_dead_letters_total)")
        if services == set(system.services) and dead >= 2:
            break
        assert time.monotonic() < deadline, f"scraped {sorted(services)}, {dead} dead letters seen"
        time.sleep(0.5)
    time.sleep(4)  # a few more scrapes, so the last increments are in two samples and rules ran


def test_every_dashboard_panel_and_alert_rule_works_against_the_running_system(observed):
    system, prometheus = observed
    with loopback_server() as server:
        followed_run = run_workload(system, prometheus, server)
    wait_for_scrapes(prometheus, system)

    exported = set(prometheus.get("/api/v1/label/__name__/values"))
    problems = []
    queries = panel_queries()
    assert len({d for d, _, _ in queries}) == 4 and len(queries) > 40
    for dashboard, title, expr in queries:
        unknown = sorted(set(METRIC_NAME.findall(expr)) - exported)
        if unknown:
            problems.append(f"{dashboard} / {title}: no service exports {', '.join(unknown)}")
            continue
        if not prometheus.query(expr):
            problems.append(f"{dashboard} / {title}: no data for {expr}")
    assert not problems, "\n".join(problems)

    rules = rule_expressions()
    for name, expr in rules:
        prometheus.query(expr)  # raises unless Prometheus evaluates it without error
        unknown = sorted(set(METRIC_NAME.findall(expr)) - exported)
        assert not unknown, f"rule {name} names metrics no service exports: {unknown}"
    loaded = [r for g in prometheus.get("/api/v1/rules")["groups"] for r in g["rules"]]
    assert sorted(r["name"] for r in loaded) == sorted(name for name, _ in rules)
    unhealthy = [(r["name"], r.get("lastError")) for r in loaded if r["health"] != "ok"]
    assert not unhealthy, unhealthy

    # Some values the workload fixes, so the series are not merely there but right.
    assert prometheus.value('sum(millrace_ai_tokens_total{kind="prompt"})') == 12
    assert prometheus.value('sum(millrace_ai_tokens_total{kind="completion"})') == 4
    assert prometheus.value('sum(millrace_http_node_responses_total{status_class="5xx"})') == 1
    assert prometheus.value('sum(millrace_http_node_responses_total{status_class="4xx"})') == 2
    assert prometheus.value('sum(millrace_webhook_requests_total{outcome="not_found"})') == 1
    assert prometheus.value('sum(millrace_webhook_requests_total{outcome="accepted"})') == 1
    lettered = {s["metric"]["topic"] for s in prometheus.query("millrace_dead_letters_total > 0")}
    assert lettered == {"records.events", "nodes.ready.http"}
    assert prometheus.value('sum(millrace_approval_decisions_total{outcome="approved"})') == 1
    # Everything was consumed, published and fired: no lag, no backlog, nothing waiting.
    lags = prometheus.query("millrace_consumer_lag")
    assert {s["metric"]["group"] for s in lags} == {"trigger", "orchestrator", "node-runner", "approval"}
    prometheus.wait_until("max(millrace_consumer_lag)", lambda v: v == 0)
    producers = {s["metric"]["producer"] for s in prometheus.query("millrace_outbox_backlog")}
    assert producers == {
        "gateway",
        "gateway-webhooks",
        "records",
        "trigger",
        "orchestrator",
        "node-runner",
        "approval",
    }
    prometheus.wait_until("max(millrace_outbox_backlog)", lambda v: v == 0)
    for gauge in (
        "millrace_runs_waiting_for_approval",
        "millrace_approvals_pending",
        "millrace_timers_pending",
    ):
        prometheus.wait_until(f"max({gauge})", lambda v: v == 0)
    assert prometheus.value("max(millrace_gauge_collection_failing)") == 0

    # One run followed across services by its ids in their JSON-lines logs.
    lines = {name: log_lines(system, name) for name in system.services}
    mentions = {
        name: [line for line in lines[name] if line.get("run_id") == followed_run]
        for name in ("orchestrator", "node-runner", "approval")
    }
    assert all(mentions.values()), {name: len(found) for name, found in mentions.items()}
    node_ids = {line.get("node_id") for line in mentions["node-runner"]}
    assert {"summary", "notify", "tell", "save", "task"} <= node_ids, node_ids
    assert all(line["tenant_id"].startswith("obs-") for found in mentions.values() for line in found)


def log_lines(system: System, name: str) -> list[dict]:
    """A service's log, every line of which must be a JSON object naming the service."""
    parsed = []
    for number, text in enumerate(system.services[name].log_path.read_text().splitlines(), start=1):
        try:
            line = json.loads(text)
        except ValueError:
            raise AssertionError(f"{name} log line {number} is not JSON: {text[:300]}") from None
        assert isinstance(line, dict) and line.get("service"), f"{name} log line {number}: {text[:300]}"
        parsed.append(line)
    return parsed
