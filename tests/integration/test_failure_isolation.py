"""No message holds back another's work, through the real services on real Kafka and PostgreSQL.

- The size contract: an HTTP node whose target answers 1 MiB (the default response cap) or 10 MiB
  ends in seconds with the node error ``too_large``, called once, while other runs complete and the
  node runner's committed offsets reach the end of ``nodes.ready.http`` (before, the result was too
  large for Kafka: the publish was retried forever, the partition's commits stopped, and the
  orchestrator's backstop called the target again as a new attempt). Record data that no message
  could carry is refused at the API with 413 ``too_large``.
- Poison isolation: every consumer (trigger, orchestrator, node runner, approval) fails on a message
  carrying the test fault marker; after 3 attempts the message is in its dead-letter topic with the
  reason, the error's type, a trace and the attempts, and the messages behind it are handled (the
  group's lag on the topic returns to 0).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from millrace_common.platform.kafka import MessageLimitTooSmall, check_message_limit

from tests.support.api import loopback_tenant
from tests.support.infra import Infra
from tests.support.kafka import group_lag, kafka_client, read_all
from tests.support.network import Answer, LoopbackServer
from tests.support.processes import System

pytestmark = pytest.mark.integration

MARKER = "poison-7f3a9c"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def services(infra: Infra, module_namespace: str) -> Iterator[System]:
    running = System(infra, module_namespace)
    try:
        running.start(extra_env={"MILLRACE_FAULT_MARKER": MARKER})
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def api(services: System) -> Iterator[httpx.Client]:
    with loopback_tenant(services, "iso") as client:
        yield client


def node(node_id: str, node_type: str, **data: Any) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def chain(*nodes: dict, trigger: dict | None = None) -> dict:
    every = [trigger or node("start", "trigger", kind="manual"), *nodes]
    edges = [
        {"id": f"e{i}", "source": a["id"], "target": b["id"]}
        for i, (a, b) in enumerate(itertools.pairwise(every))
    ]
    return {"nodes": every, "edges": edges}


def create(api: httpx.Client, definition: dict, *, activate: bool = False) -> str:
    created = api.post("/api/v1/workflows", json={"name": "isolation", "definition": definition})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    if activate:
        assert api.post(f"/api/v1/workflows/{workflow_id}/activate", json={}).status_code == 200
    return workflow_id


def run(api: httpx.Client, workflow_id: str, data: dict | None = None) -> str:
    started = api.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": data or {}})
    assert started.status_code == 202, started.text
    return started.json()["run_id"]


def eventually(probe: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def finished(api: httpx.Client, run_id: str, timeout: float = 30) -> dict:
    def settled() -> dict | None:
        answer = api.get(f"/api/v1/runs/{run_id}")
        body = answer.json() if answer.status_code == 200 else {}
        return body if body.get("status") not in (None, "running") else None

    return eventually(settled, f"run {run_id} to finish", timeout)


def topic(services: System, name: str) -> str:
    return f"{services.namespace}.{name}"


def group(services: System, name: str) -> str:
    return f"{services.namespace}.{name}"


def test_a_response_no_message_can_carry_fails_its_node_as_too_large_at_once_and_holds_back_nothing(
    services: System, api: httpx.Client, server: LoopbackServer
) -> None:
    server.route("/one-mib", Answer(200, "x" * MIB))
    server.route("/ten-mib", Answer(200, "y" * (10 * MIB)))
    server.route("/small", Answer(200, {"ok": True}))
    one = create(api, chain(node("call", "http_request", method="GET", url=f"{server.url}/one-mib")))
    ten = create(
        api,
        chain(
            node(
                "call", "http_request", method="GET", url=f"{server.url}/ten-mib", response_cap_bytes=10 * MIB
            )
        ),
    )
    small = create(api, chain(node("call", "http_request", method="GET", url=f"{server.url}/small")))

    began = time.monotonic()
    big_runs = [run(api, one), run(api, ten)]
    small_runs = [run(api, small) for _ in range(20)]
    for run_id in big_runs:
        outcome = finished(api, run_id, timeout=30)
        call = next(n for n in outcome["nodes"] if n["node_id"] == "call")
        assert outcome["status"] == "failed", outcome
        assert call["error"]["type"] == "too_large", call["error"]
        assert "934,464" in call["error"]["message"]
    took = time.monotonic() - began
    assert took < 25, f"the oversized results took {took:.1f} s to be reported"
    assert all(finished(api, run_id)["status"] == "completed" for run_id in small_runs)
    # Each target called exactly once: no second attempt while the first one's outcome was unknown.
    assert len(server.requests_to("/one-mib")) == 1 and len(server.requests_to("/ten-mib")) == 1
    eventually(
        lambda: (
            group_lag(
                services.infra.kafka_bootstrap,
                group(services, "node-runner"),
                topic(services, "nodes.ready.http"),
            )
            == 0
        ),
        "the node runner's committed offsets to reach the end of nodes.ready.http",
    )


def test_record_data_no_message_could_carry_is_refused_at_the_api(api: httpx.Client) -> None:
    assert api.post("/api/v1/pipelines", json={"id": "big", "name": "Big"}).status_code == 201
    answer = api.post("/api/v1/pipelines/big/records", json={"data": {"blob": "z" * (1_100_000)}})
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "too_large" and "1,000,000" in answer.json()["detail"]
    fits = api.post("/api/v1/pipelines/big/records", json={"data": {"blob": "z" * 300_000}})
    assert fits.status_code == 201, fits.text


def test_a_message_that_breaks_each_consumer_is_dead_lettered_and_the_partition_moves_on(
    services: System, api: httpx.Client, server: LoopbackServer
) -> None:
    server.route("/hook", Answer(200, {"ok": True}))
    bootstrap = services.infra.kafka_bootstrap
    # trigger (records.events): a record whose data carries the marker; then a clean one.
    assert api.post("/api/v1/pipelines", json={"id": "leads", "name": "Leads"}).status_code == 201
    on_record = create(
        api,
        chain(
            node("done", "end"),
            trigger=node("start", "trigger", kind="record_created", pipeline_ids=["leads"]),
        ),
        activate=True,
    )
    assert api.post("/api/v1/pipelines/leads/records", json={"data": {"note": MARKER}}).status_code == 201
    assert api.post("/api/v1/pipelines/leads/records", json={"data": {"note": "clean"}}).status_code == 201
    # orchestrator (runs.commands): a manual run whose input carries the marker; then a clean one.
    plain = create(api, chain(node("done", "end")))
    run(api, plain, {"note": MARKER})
    clean_run = run(api, plain, {"note": "clean"})
    # node runner (nodes.ready.http): a command whose rendered input carries the marker (the run's
    # start does not: the template builds it); approval (runs.approvals): a request whose rendered
    # title carries it.
    builds = '{{ "poison-" ~ "7f3a9c" }}'
    call = create(
        api, chain(node("call", "http_request", method="POST", url=f"{server.url}/hook", body={"m": builds}))
    )
    poisoned_call = run(api, call)
    asking = chain(node("ask", "approval", title=builds, assignee={"role": "approver"}), node("done", "end"))
    asking["edges"][1]["sourceHandle"] = "approved"
    ask = create(api, asking)
    run(api, ask)

    assert finished(api, clean_run)["status"] == "completed"
    # The runner could not handle that command: it answered with a failure, so the run does not wait.
    failed_call = finished(api, poisoned_call)
    error = next(n for n in failed_call["nodes"] if n["node_id"] == "call")["error"]
    assert failed_call["status"] == "failed" and error["type"] == "runner_error"
    assert "InjectedFault" in error["message"] and not error["retryable"]
    runs_of_record_trigger = eventually(
        lambda: api.get("/api/v1/runs", params={"workflow_id": on_record}).json()["items"],
        "the clean record's run",
    )
    assert len(runs_of_record_trigger) == 1  # the poisoned record's event was dead-lettered, not run

    expected = {
        "records.events.dlq": "trigger",
        "runs.commands.dlq": "orchestrator",
        "nodes.ready.http.dlq": "node-runner",
        "runs.approvals.dlq": "approval",
    }
    for dlq, consumer in expected.items():
        letters = eventually(
            lambda dlq=dlq: [
                letter
                for letter in read_all(bootstrap, topic(services, dlq))
                if MARKER in letter["raw_value"]
            ],
            f"a dead letter on {dlq}",
        )
        letter = letters[0]
        assert letter["consumer_group"] == group(services, consumer), letter
        assert letter["error_type"] == "InjectedFault" and "fault marker" in letter["reason"]
        assert letter["trace"] and letter["attempts"] >= 1
        assert letter["source_topic"] == topic(services, dlq.removesuffix(".dlq"))
        assert letter["offset"] >= 0 and letter["partition"] >= 0
    for source, consumer in (
        ("records.events", "trigger"),
        ("runs.commands", "orchestrator"),
        ("nodes.ready.http", "node-runner"),
    ):
        eventually(
            lambda source=source, consumer=consumer: (
                group_lag(bootstrap, group(services, consumer), topic(services, source)) == 0
            ),
            f"{consumer}'s committed offsets on {source} to reach the end",
        )
    # Now that the poisoned record's event is known to be dead-lettered, it can be known not to have run.
    assert len(api.get("/api/v1/runs", params={"workflow_id": on_record}).json()["items"]) == 1


def test_a_service_refuses_to_start_when_a_topic_accepts_smaller_messages_than_its_setting(
    infra: Infra, namespace: str
) -> None:
    async def shrink_and_check() -> str:
        from aiokafka.admin import AIOKafkaAdminClient
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        admin = AIOKafkaAdminClient(**kafka_client(infra.kafka_bootstrap))
        await admin.start()
        try:
            await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC,
                        f"{namespace}.nodes.results",
                        configs={"max.message.bytes": "500000"},
                    )
                ]
            )
        finally:
            await admin.close()
        # The broker applies the change within moments; the check is asked until it sees it.
        for _ in range(50):
            await check_message_limit(infra.settings(namespace))  # passes while the change is unseen
            await asyncio.sleep(0.2)
        return ""

    with pytest.raises(MessageLimitTooSmall) as refused:
        asyncio.run(shrink_and_check())
    assert f"{namespace}.nodes.results (500000)" in str(refused.value)
    assert "MILLRACE_KAFKA_MAX_MESSAGE_BYTES is 1000000" in str(refused.value)

    system = System(infra, namespace)
    with pytest.raises(RuntimeError, match="MessageLimitTooSmall|max.message.bytes"):
        system.start(("orchestrator",))
    system.stop_all()
