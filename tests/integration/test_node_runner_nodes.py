"""The node runner as a real process on real Kafka and PostgreSQL: commands go in on the runner
topics, results come out on ``nodes.results``, against loopback HTTP and OpenAI-compatible servers.

One runner serves the module (AI concurrency 2 and causation depth 3, so lanes and loops are quick
to show); every test has its own tenant, runs and servers' paths."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from millrace_common.contracts.messages.envelope import DeadLetter, utc_now
from millrace_common.contracts.messages.node_commands import (
    NODE_RESULT,
    ExecuteNode,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.messages.records import RECORD_EVENT
from millrace_common.contracts.topics import (
    NODES_READY_HTTP,
    NODES_READY_OTHER,
    NODES_RESULTS,
    RECORDS_EVENTS,
    Namespace,
    Topic,
)
from millrace_common.language.workflow import RUNNER_TOPICS
from millrace_common.platform.db import create_engine
from millrace_common.platform.secrets import SecretBox
from millrace_common.platform.tables import (
    ai_token_usage,
    credentials,
    pipelines,
    records,
    runner_executions,
    tasks,
    tenant_ai_settings,
    tenants,
)
from millrace_node_runner.domain.http import SIGNATURE_HEADER, signature_holds
from pydantic import SecretStr
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.infra import Infra
from tests.support.kafka import kafka_client, partitions_of
from tests.support.network import (
    Answer,
    ChatTurn,
    LoopbackServer,
    allow_loopback,
    chat_route,
    loopback_server,
)
from tests.support.processes import System

pytestmark = pytest.mark.integration

MAX_DEPTH = 3
AI_SLOTS = 2
Result = NodeSucceededResult | NodeFailedResult


class TopicReader:
    """Reads a topic from its beginning in the background; tests wait for what they expect."""

    def __init__(self, bootstrap: str, name: str, partitions: int, decode: Callable[[bytes], Any]) -> None:
        self._consumer = AIOKafkaConsumer(**kafka_client(bootstrap), fetch_max_wait_ms=5)
        self._bootstrap, self._name = bootstrap, name
        self._partitions = [TopicPartition(name, p) for p in range(partitions)]
        self._decode = decode
        self.seen: list[Any] = []
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Every partition the broker has (more than ``partitions`` for a dead-letter topic whose count
        # comes from the settings).
        found = await partitions_of(self._bootstrap, self._name)
        self._partitions = [TopicPartition(self._name, p) for p in found] or self._partitions
        await self._consumer.start()
        self._consumer.assign(self._partitions)
        await self._consumer.seek_to_beginning(*self._partitions)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self._consumer.getmany(timeout_ms=50)
            for found in batch.values():
                self.seen.extend(self._decode(r.value) for r in found)
            if batch:
                self._changed.set()

    async def wait_for(
        self, predicate: Callable[[Any], bool], count: int = 1, timeout: float = 20
    ) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            matching = [m for m in self.seen if predicate(m)]
            if len(matching) >= count:
                return matching
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"expected {count} message(s), saw {len(matching)}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._consumer.stop()


@dataclass
class Runner:
    """Sends commands to a running node runner and collects their results."""

    system: System
    db: AsyncEngine
    producer: AIOKafkaProducer
    results: TopicReader
    record_events: TopicReader
    box: SecretBox
    sent: list[ExecuteNode] = field(default_factory=list)

    def topic(self, topic: Topic) -> str:
        return Namespace(self.system.namespace).topic(topic)

    def command(self, tenant: str, node_type: str, node_input: dict, **fields: Any) -> ExecuteNode:
        defaults: dict[str, Any] = {
            "run_id": uuid.uuid4(),
            "node_id": "n1",
            "attempt": 1,
            "timeout_seconds": 10,
        }
        return ExecuteNode(
            tenant_id=tenant,
            workflow_id=uuid.uuid4(),
            node_type=node_type,
            input=node_input,
            **(defaults | fields),
        )

    async def send(self, command: ExecuteNode) -> None:
        await self.producer.send_and_wait(
            self.topic(RUNNER_TOPICS[command.node_type])
            if command.node_type in RUNNER_TOPICS
            else self.topic(NODES_READY_OTHER),
            command.to_bytes(),
            key=str(command.run_id).encode(),
        )

    async def result_of(self, command: ExecuteNode, count: int = 1, timeout: float = 20) -> Result:
        found = await self.results.wait_for(lambda r: r.causation_id == command.message_id, count, timeout)
        return found[-1]

    async def run(self, tenant: str, node_type: str, node_input: dict, **fields: Any) -> Result:
        command = self.command(tenant, node_type, node_input, **fields)
        await self.send(command)
        return await self.result_of(command)

    async def tenant(self, *, loopback: bool = True) -> str:
        tenant_id = f"t-{uuid.uuid4().hex[:10]}"
        async with self.db.begin() as connection:
            await connection.execute(
                insert(tenants).values(id=tenant_id, name=tenant_id, created_at=utc_now())
            )
        if loopback:
            await allow_loopback(self.db, tenant_id)
        return tenant_id

    async def credential(self, tenant: str, name: str, secret: dict) -> None:
        now = utc_now()
        async with self.db.begin() as connection:
            await connection.execute(
                insert(credentials).values(
                    id=uuid.uuid4(),
                    tenant_id=tenant,
                    name=name,
                    kind=secret["kind"],
                    ciphertext=self.box.seal(json.dumps(secret)),
                    created_at=now,
                    updated_at=now,
                )
            )

    async def ai_settings(
        self, tenant: str, base_url: str, *, budget: int | None = None, allow_private: bool = True
    ) -> None:
        async with self.db.begin() as connection:
            await connection.execute(
                insert(tenant_ai_settings).values(
                    tenant_id=tenant,
                    base_url=base_url,
                    model="tenant-model",
                    api_key_ciphertext=self.box.seal("sk-test-key"),
                    temperature=0.3,
                    max_tokens=256,
                    monthly_token_budget=budget,
                    allow_private_endpoint=allow_private,
                    updated_at=utc_now(),
                )
            )

    async def pipeline(self, tenant: str, pipeline_id: str = "leads") -> str:
        async with self.db.begin() as connection:
            await connection.execute(
                insert(pipelines).values(
                    tenant_id=tenant, id=pipeline_id, name=pipeline_id, created_at=utc_now()
                )
            )
        return pipeline_id

    async def count(self, table: Any, *where: Any) -> int:
        async with self.db.connect() as connection:
            return (
                await connection.execute(select(func.count()).select_from(table).where(*where))
            ).scalar_one()


@pytest.fixture(scope="module")
def runner_process(infra: Infra, module_namespace: str) -> Iterator[System]:
    system = System(infra, module_namespace)
    system.start(
        ("node-runner",),
        extra_env={"MILLRACE_AI_CONCURRENCY": str(AI_SLOTS), "MILLRACE_MAX_CAUSATION_DEPTH": str(MAX_DEPTH)},
    )
    yield system
    assert system.stop_all() == {"node-runner": 0}


async def open_runner(system: System) -> Runner:
    namespace = Namespace(system.namespace)
    producer = AIOKafkaProducer(**kafka_client(system.infra.kafka_bootstrap), linger_ms=1)
    await producer.start()
    results = TopicReader(
        system.infra.kafka_bootstrap,
        namespace.topic(NODES_RESULTS),
        len(await partitions_of(system.infra.kafka_bootstrap, namespace.topic(NODES_RESULTS))),
        NODE_RESULT.validate_json,
    )
    events = TopicReader(
        system.infra.kafka_bootstrap,
        namespace.topic(RECORDS_EVENTS),
        len(await partitions_of(system.infra.kafka_bootstrap, namespace.topic(RECORDS_EVENTS))),
        RECORD_EVENT.validate_json,
    )
    await results.start()
    await events.start()
    db = create_engine(system.infra.settings(system.namespace))
    return Runner(system, db, producer, results, events, SecretBox(SecretStr(system.encryption_key)))


async def close_runner(runner: Runner) -> None:
    await runner.results.stop()
    await runner.record_events.stop()
    await runner.producer.stop()
    await runner.db.dispose()


@pytest.fixture(scope="module")
async def runner(runner_process: System) -> AsyncIterator[Runner]:
    opened = await open_runner(runner_process)
    yield opened
    await close_runner(opened)


@pytest.fixture(scope="module")
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


def path() -> str:
    return f"/{uuid.uuid4().hex[:12]}"


def failure(result: Result) -> tuple[str, bool]:
    assert isinstance(result, NodeFailedResult), result
    return result.error.type, result.error.retryable


# --- http_request --------------------------------------------------------------------------------


async def test_an_http_request_sends_query_headers_json_and_the_bearer_credential(
    runner: Runner, server: LoopbackServer
):
    tenant = await runner.tenant()
    await runner.credential(tenant, "crm-token", {"kind": "bearer", "token": "t0ken-123"})
    route = path()
    server.route(route, Answer(201, {"id": 42}, {"x-request-id": "r-1"}))

    result = await runner.run(
        tenant,
        "http_request",
        {
            "method": "POST",
            "url": f"{server.url}{route}?a=1",
            "query": {"b": 2},
            "headers": {"X-Trace": "yes"},
            "auth": {"type": "bearer", "credential": "crm-token"},
            "body": {"email": "ada@example.com"},
        },
        node_id="call",
        attempt=2,
    )

    assert isinstance(result, NodeSucceededResult)
    assert result.output["status"] == 201 and result.output["body"] == {"id": 42}
    assert (
        result.output["headers"]["x-request-id"] == "r-1" and result.attempt == 2 and result.duration_ms > 0
    )
    (sent,) = server.requests_to(route)
    assert sent.path == f"{route}?a=1&b=2" and sent.json() == {"email": "ada@example.com"}
    assert sent.header("authorization") == "Bearer t0ken-123" and sent.header("x-trace") == "yes"
    assert sent.header("idempotency-key") == f"{result.run_id}:call:2"
    assert "t0ken-123" not in result.model_dump_json()


async def test_form_and_raw_bodies_with_basic_and_header_credentials(runner: Runner, server: LoopbackServer):
    tenant = await runner.tenant()
    await runner.credential(tenant, "basic", {"kind": "basic", "username": "ada", "password": "pw"})
    await runner.credential(tenant, "key", {"kind": "header", "header_name": "X-Api-Key", "value": "k-9"})
    form, raw = path(), path()
    server.route(form, Answer(200, "ok"))
    server.route(raw, Answer(200, "ok"))

    first = await runner.run(
        tenant,
        "http_request",
        {
            "method": "PUT",
            "url": f"{server.url}{form}",
            "body_type": "form",
            "body": {"q": "a b", "n": 1},
            "auth": {"type": "basic", "credential": "basic"},
        },
    )
    second = await runner.run(
        tenant,
        "http_request",
        {
            "method": "PATCH",
            "url": f"{server.url}{raw}",
            "body_type": "raw",
            "body": "<x/>",
            "auth": {"type": "header", "credential": "key"},
        },
    )
    wrong_kind = await runner.run(
        tenant, "http_request", {"url": f"{server.url}{raw}", "auth": {"type": "bearer", "credential": "key"}}
    )
    missing = await runner.run(
        tenant,
        "http_request",
        {"url": f"{server.url}{raw}", "auth": {"type": "bearer", "credential": "nope"}},
    )

    assert isinstance(first, NodeSucceededResult) and first.output["body"] == "ok"
    assert isinstance(second, NodeSucceededResult)
    (form_sent,) = server.requests_to(form)
    assert form_sent.body == b"q=a+b&n=1" and form_sent.header("authorization") == "Basic YWRhOnB3"
    raw_sent = server.requests_to(raw)[0]
    assert raw_sent.body == b"<x/>" and raw_sent.header("x-api-key") == "k-9"
    assert failure(wrong_kind) == ("credential_mismatch", False)
    assert failure(missing) == ("credential_not_found", False)


async def test_server_errors_are_retryable_with_retry_after_and_other_client_errors_are_not(
    runner: Runner, server: LoopbackServer
):
    tenant = await runner.tenant()
    busy, gone, flaky = path(), path(), path()
    server.route(busy, Answer(429, "slow down: internal queue at 10.1.1.1", {"retry-after": "7"}))
    server.route(gone, Answer(404, "no such thing in /srv/internal"))
    server.route(flaky, [Answer(503, "down"), Answer(200, {"ok": True})])
    run_id = uuid.uuid4()

    throttled = await runner.run(tenant, "http_request", {"url": f"{server.url}{busy}"})
    missing = await runner.run(tenant, "http_request", {"url": f"{server.url}{gone}"})
    attempt_one = await runner.run(
        tenant, "http_request", {"url": f"{server.url}{flaky}"}, run_id=run_id, attempt=1
    )
    attempt_two = await runner.run(
        tenant, "http_request", {"url": f"{server.url}{flaky}"}, run_id=run_id, attempt=2
    )

    assert failure(throttled) == ("http_status", True)
    assert throttled.error.retry_after_seconds == 7 and "10.1.1.1" not in throttled.error.message
    assert failure(missing) == ("http_status", False) and "/srv/internal" not in missing.error.message
    assert failure(attempt_one) == ("http_status", True)
    assert isinstance(attempt_two, NodeSucceededResult) and attempt_two.attempt == 2
    keys = [r.header("idempotency-key") for r in server.requests_to(flaky)]
    assert keys == [f"{run_id}:n1:1", f"{run_id}:n1:2"]


async def test_the_nodes_timeout_is_enforced_by_the_runner(runner: Runner, server: LoopbackServer):
    tenant = await runner.tenant()
    slow = path()
    server.route(slow, Answer(200, "late", delay_seconds=3))

    started = time.monotonic()
    result = await runner.run(tenant, "http_request", {"url": f"{server.url}{slow}"}, timeout_seconds=0.5)

    assert failure(result) == ("timeout", True)
    assert result.duration_ms < 1500 and time.monotonic() - started < 3


async def test_targets_the_tenant_has_not_opened_are_refused_before_connecting(
    runner: Runner, server: LoopbackServer
):
    tenant = await runner.tenant(loopback=False)
    route = path()
    server.route(route, Answer(200, "should not be reached"))
    urls = [
        f"{server.url}{route}",
        f"http://127.1:{server.port}{route}",
        f"http://2130706433:{server.port}{route}",
        f"http://[::1]:{server.port}{route}",
        f"http://0.0.0.0:{server.port}{route}",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
    ]

    results = [await runner.run(tenant, "http_request", {"url": url}) for url in urls]
    webhook = await runner.run(tenant, "webhook_out", {"url": f"{server.url}{route}", "payload": {}})

    assert [failure(r) for r in [*results, webhook]] == [("target_not_allowed", False)] * (len(urls) + 1)
    assert server.requests_to(route) == []


async def test_a_redirect_to_a_private_address_is_refused_at_the_hop(runner: Runner, server: LoopbackServer):
    tenant = await runner.tenant()
    hop = path()
    server.route(hop, Answer(302, headers={"location": "http://10.0.0.1/"}))

    result = await runner.run(tenant, "http_request", {"url": f"{server.url}{hop}"})

    assert failure(result) == ("target_not_allowed", False)
    assert (
        result.error.message == "10.0.0.1 is a private address; the tenant's network policy does not allow it"
    )


# --- webhook_out ---------------------------------------------------------------------------------


async def test_an_outgoing_webhook_is_signed_over_timestamp_and_body(runner: Runner, server: LoopbackServer):
    tenant = await runner.tenant()
    secret = "whsec-0123456789abcdef"
    await runner.credential(tenant, "hook-secret", {"kind": "hmac", "secret": secret})
    hook, moved = path(), path()
    server.route(hook, Answer(202, {"accepted": True}))
    server.route(moved, Answer(301, headers={"location": hook}))

    result = await runner.run(
        tenant,
        "webhook_out",
        {
            "url": f"{server.url}{hook}",
            "payload": {"deal": 7, "name": "Åse"},
            "headers": {"X-Source": "crm"},
            "secret_credential": "hook-secret",
        },
    )
    redirected = await runner.run(tenant, "webhook_out", {"url": f"{server.url}{moved}", "payload": {}})

    assert isinstance(result, NodeSucceededResult) and result.output["status"] == 202
    (delivery,) = server.requests_to(hook)
    assert delivery.method == "POST" and delivery.json() == {"deal": 7, "name": "Åse"}
    assert delivery.header("content-type") == "application/json" and delivery.header("x-source") == "crm"
    assert signature_holds(secret, delivery.header(SIGNATURE_HEADER), delivery.body, now=int(time.time()))
    assert not signature_holds(
        "another-secret-1234", delivery.header(SIGNATURE_HEADER), delivery.body, now=int(time.time())
    )
    assert failure(redirected) == ("http_status", False)


# --- AI ------------------------------------------------------------------------------------------


@dataclass
class FakeModel:
    """The OpenAI-compatible server's model for one tenant: scripted turns, requests recorded."""

    turns: list[ChatTurn]
    asked: list[dict] = field(default_factory=list)

    def __call__(self, request: dict) -> ChatTurn:
        self.asked.append(request)
        return self.turns.pop(0) if len(self.turns) > 1 else self.turns[0]


async def ai_tenant(
    runner: Runner, server: LoopbackServer, turns: list[ChatTurn], **settings: Any
) -> tuple[str, FakeModel]:
    tenant = await runner.tenant()
    model = FakeModel(turns)
    prefix = path()
    server.route(f"{prefix}/v1/chat/completions", chat_route(model))
    await runner.ai_settings(tenant, f"{server.url}{prefix}/v1", **settings)
    return tenant, model


async def test_a_prompt_is_answered_through_the_tenants_endpoint_and_its_tokens_recorded(
    runner: Runner, server: LoopbackServer
):
    tenant, model = await ai_tenant(
        runner, server, [ChatTurn("Hello, Ada.", prompt_tokens=21, completion_tokens=4)]
    )

    command = runner.command(
        tenant, "ai_prompt", {"prompt": "Greet Ada", "system": "Be brief", "temperature": 0}, node_id="greet"
    )
    await runner.send(command)
    result = await runner.result_of(command)

    assert isinstance(result, NodeSucceededResult)
    assert result.output == {
        "text": "Hello, Ada.",
        "model": "tenant-model",
        "finish_reason": "stop",
        "cached": False,
        "usage": {"prompt_tokens": 21, "completion_tokens": 4, "total_tokens": 25},
    }
    (asked,) = model.asked
    assert asked["messages"] == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "Greet Ada"},
    ]
    assert (asked["model"], asked["temperature"], asked["max_tokens"]) == ("tenant-model", 0, 256)
    async with runner.db.connect() as connection:
        usage = (
            await connection.execute(select(ai_token_usage).where(ai_token_usage.c.tenant_id == tenant))
        ).one()
    assert (usage.run_id, usage.workflow_id, usage.node_id, usage.model, usage.total_tokens) == (
        result.run_id,
        command.workflow_id,
        "greet",
        "tenant-model",
        25,
    )


async def test_analysis_asks_for_json_mode_and_validates_the_answer_against_the_schema(
    runner: Runner, server: LoopbackServer
):
    schema = {
        "type": "object",
        "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 10}},
        "required": ["score"],
    }
    tenant, model = await ai_tenant(runner, server, [ChatTurn('{"score": 11}'), ChatTurn('{"score": 8}')])

    wrong = await runner.run(tenant, "ai_analysis", {"prompt": "Rate it", "output_schema": schema})
    right = await runner.run(tenant, "ai_analysis", {"prompt": "Rate it", "output_schema": schema}, attempt=2)

    assert failure(wrong) == ("ai_invalid_answer", True)
    assert (
        wrong.error.message
        == "the answer does not match the output schema: /score: 11 is greater than the maximum of 10"
    )
    assert isinstance(right, NodeSucceededResult) and right.output["data"] == {"score": 8}
    assert all(asked["response_format"] == {"type": "json_object"} for asked in model.asked)
    assert await runner.count(ai_token_usage, ai_token_usage.c.tenant_id == tenant) == 2


async def test_classification_answers_with_one_of_the_nodes_labels(runner: Runner, server: LoopbackServer):
    tenant, _ = await ai_tenant(
        runner,
        server,
        [
            ChatTurn('{"label": "refund", "confidence": 0.7, "reasoning": "wants money back"}'),
            ChatTurn('{"label": "Weather", "confidence": 0.9, "reasoning": "?"}'),
        ],
    )
    node = {"text": "I want my money back", "labels": ["Refund", "Question"]}

    chosen = await runner.run(tenant, "ai_classification", node)
    stray = await runner.run(tenant, "ai_classification", {**node, "text": "other text"})

    assert isinstance(chosen, NodeSucceededResult)
    assert (chosen.output["label"], chosen.output["confidence"], chosen.output["reasoning"]) == (
        "Refund",
        0.7,
        "wants money back",
    )
    assert failure(stray) == ("ai_invalid_answer", True) and "Weather" in stray.error.message


async def test_identical_input_inside_a_run_is_answered_from_the_stored_result(
    runner: Runner, server: LoopbackServer
):
    tenant, model = await ai_tenant(runner, server, [ChatTurn("first"), ChatTurn("second")])
    run_id = uuid.uuid4()

    paid = await runner.run(tenant, "ai_prompt", {"prompt": "Same"}, run_id=run_id, node_id="a")
    reused = await runner.run(tenant, "ai_prompt", {"prompt": "Same"}, run_id=run_id, node_id="b")
    other_run = await runner.run(tenant, "ai_prompt", {"prompt": "Same"}, node_id="a")

    assert (paid.output["text"], paid.output["cached"]) == ("first", False)
    assert (reused.output["text"], reused.output["cached"]) == ("first", True)
    assert other_run.output["text"] == "second"
    assert len(model.asked) == 2
    assert await runner.count(ai_token_usage, ai_token_usage.c.run_id == run_id) == 1


async def test_the_monthly_token_budget_stops_calls_with_a_clear_error(
    runner: Runner, server: LoopbackServer
):
    tenant, model = await ai_tenant(
        runner, server, [ChatTurn("ok", prompt_tokens=10, completion_tokens=5)], budget=20
    )

    first = await runner.run(tenant, "ai_prompt", {"prompt": "one"})
    second = await runner.run(tenant, "ai_prompt", {"prompt": "two"})
    third = await runner.run(tenant, "ai_prompt", {"prompt": "three"})

    assert isinstance(first, NodeSucceededResult) and isinstance(second, NodeSucceededResult)
    assert failure(third) == ("ai_budget_exceeded", False)
    assert third.error.message.startswith(
        f"the tenant's monthly AI token budget of 20 tokens is used up (30 used in {datetime.now(UTC):%Y-%m})"
    )
    assert len(model.asked) == 2


async def test_ai_endpoint_errors_are_typed_and_their_bodies_not_echoed(
    runner: Runner, server: LoopbackServer
):
    tenant, _ = await ai_tenant(
        runner, server, [ChatTurn("", status=503, headers={"retry-after": "4"}), ChatTurn("", status=401)]
    )

    unavailable = await runner.run(tenant, "ai_prompt", {"prompt": "x"})
    unauthorised = await runner.run(tenant, "ai_prompt", {"prompt": "y"})
    unconfigured = await runner.run(await runner.tenant(), "ai_prompt", {"prompt": "z"})

    assert failure(unavailable) == ("ai_status", True) and unavailable.error.retry_after_seconds == 4
    assert failure(unauthorised) == ("ai_status", False)
    assert "10.1.2.3" not in unavailable.error.message + unauthorised.error.message
    assert failure(unconfigured) == ("ai_not_configured", False)


async def test_an_ai_endpoint_the_tenant_has_not_allowed_never_receives_the_key(
    runner: Runner, server: LoopbackServer
):
    tenant, model = await ai_tenant(runner, server, [ChatTurn("never")], allow_private=False)

    result = await runner.run(tenant, "ai_prompt", {"prompt": "x"})

    assert failure(result) == ("target_not_allowed", False)
    assert model.asked == []


async def test_slow_ai_calls_do_not_hold_up_http_nodes(runner: Runner, server: LoopbackServer):
    tenant = await runner.tenant()
    slow_prefix, quick = path(), path()
    server.route(
        f"{slow_prefix}/v1/chat/completions", chat_route(lambda _: ChatTurn("slow", delay_seconds=1.5))
    )
    server.route(quick, Answer(200, "quick"))
    await runner.ai_settings(tenant, f"{server.url}{slow_prefix}/v1")
    slow_commands = [runner.command(tenant, "ai_prompt", {"prompt": f"p{i}"}) for i in range(AI_SLOTS * 2)]
    for command in slow_commands:
        await runner.send(command)
    await asyncio.sleep(0.3)

    started = time.monotonic()
    quick_result = await runner.run(tenant, "http_request", {"url": f"{server.url}{quick}"})
    quick_seconds = time.monotonic() - started

    assert isinstance(quick_result, NodeSucceededResult) and quick_seconds < 1.0
    slow_results = [await runner.result_of(c, timeout=30) for c in slow_commands]
    assert all(isinstance(r, NodeSucceededResult) for r in slow_results)


# --- records -------------------------------------------------------------------------------------


def events_of(runner: Runner, run_id: uuid.UUID) -> Callable[[Any], bool]:
    return lambda event: event.caused_by_run == run_id


async def test_a_record_is_created_once_per_attempt_with_its_event_naming_the_run(runner: Runner):
    tenant = await runner.tenant()
    pipeline = await runner.pipeline(tenant)
    command = runner.command(
        tenant,
        "record_create",
        {"pipeline_id": pipeline, "data": {"email": "ada@example.com"}},
        causation_depth=1,
    )

    await runner.send(command)
    first = await runner.result_of(command)
    await runner.send(command)
    again = await runner.result_of(command, count=2)

    assert isinstance(first, NodeSucceededResult) and isinstance(again, NodeSucceededResult)
    assert first.output == again.output
    record = first.output["record"]
    assert record["data"] == {"email": "ada@example.com"} and record["pipeline_id"] == pipeline
    assert await runner.count(records, records.c.tenant_id == tenant) == 1
    (event,) = await runner.record_events.wait_for(events_of(runner, command.run_id))
    assert (event.type, event.record_id, event.causation_depth, event.correlation_id) == (
        "record.created",
        record["id"],
        2,
        command.run_id,
    )
    await asyncio.sleep(0.3)
    assert len([e for e in runner.record_events.seen if e.caused_by_run == command.run_id]) == 1


async def test_records_are_updated_merged_or_replaced_found_and_deleted_with_events(runner: Runner):
    tenant = await runner.tenant()
    pipeline = await runner.pipeline(tenant, "deals")
    run_id = uuid.uuid4()
    made = []
    for index, (company, amount) in enumerate([("Acme", 10), ("Acme", 30), ("Beta", 20), ("Acme", 20)]):
        created = await runner.run(
            tenant,
            "record_create",
            {"pipeline_id": pipeline, "data": {"company": company, "amount": amount}},
            run_id=run_id,
            node_id=f"make{index}",
        )
        made.append(created.output["record"]["id"])

    merged = await runner.run(
        tenant,
        "record_update",
        {"pipeline_id": pipeline, "record_id": made[0], "data": {"stage": "won"}},
        run_id=run_id,
        node_id="merge",
    )
    replaced = await runner.run(
        tenant,
        "record_update",
        {"pipeline_id": pipeline, "record_id": made[2], "data": {"company": "Beta"}, "mode": "replace"},
        run_id=run_id,
        node_id="replace",
    )
    found = await runner.run(
        tenant,
        "record_find",
        {
            "pipeline_id": pipeline,
            "limit": 2,
            "sort": [{"field": "data.amount", "direction": "desc"}],
            "filters": {
                "and": [
                    {"field": "data.company", "operator": "equals", "value": "Acme"},
                    {"field": "data.amount", "operator": "greater_than_or_equals", "value": 15},
                ]
            },
        },
        run_id=run_id,
        node_id="find",
    )
    deleted = await runner.run(
        tenant,
        "record_delete",
        {"pipeline_id": pipeline, "record_id": made[1]},
        run_id=run_id,
        node_id="drop",
    )
    missing = await runner.run(
        tenant,
        "record_update",
        {"pipeline_id": pipeline, "record_id": made[1], "data": {}},
        run_id=run_id,
        node_id="late",
    )
    elsewhere = await runner.run(await runner.tenant(), "record_find", {"pipeline_id": pipeline})

    assert merged.output["record"]["data"] == {"company": "Acme", "amount": 10, "stage": "won"}
    assert replaced.output["record"]["data"] == {"company": "Beta"}
    assert [r["data"]["amount"] for r in found.output["records"]] == [30, 20] and found.output["count"] == 2
    assert deleted.output["deleted"] is True
    assert failure(missing) == ("not_found", False)
    assert failure(elsewhere) == ("not_found", False)
    events = await runner.record_events.wait_for(events_of(runner, run_id), count=7)
    assert (
        sorted(e.type for e in events) == ["record.created"] * 4 + ["record.deleted"] + ["record.updated"] * 2
    )
    update = next(e for e in events if e.type == "record.updated" and e.record_id == made[2])
    assert update.old_data == {"company": "Beta", "amount": 20} and update.data == {"company": "Beta"}


async def test_a_chain_of_workflows_stops_at_the_configured_depth_with_the_reason(runner: Runner):
    tenant = await runner.tenant()
    pipeline = await runner.pipeline(tenant)

    deepest_allowed = await runner.run(
        tenant, "record_create", {"pipeline_id": pipeline, "data": {}}, causation_depth=MAX_DEPTH - 1
    )
    too_deep = await runner.run(
        tenant, "record_create", {"pipeline_id": pipeline, "data": {"loop": True}}, causation_depth=MAX_DEPTH
    )

    assert isinstance(deepest_allowed, NodeSucceededResult)
    assert failure(too_deep) == ("causation_depth_exceeded", False)
    assert too_deep.error.message.startswith(
        f"causation depth {MAX_DEPTH + 1} exceeds the limit of {MAX_DEPTH}"
    )
    assert await runner.count(records, records.c.tenant_id == tenant) == 1
    assert await runner.count(runner_executions, runner_executions.c.run_id == too_deep.run_id) == 0


async def test_a_task_is_created_once_for_a_user_or_a_role(runner: Runner):
    tenant = await runner.tenant()
    command = runner.command(
        tenant, "task_notify", {"assignee": {"role": "approver"}, "title": "Check deal", "message": "Big one"}
    )

    await runner.send(command)
    await runner.send(command)
    first = await runner.result_of(command, count=2)
    for_user = await runner.run(
        tenant, "task_notify", {"assignee": {"user": "ada@example.com"}, "title": "Call back"}
    )

    assert isinstance(first, NodeSucceededResult) and first.output["assignee"] == {"role": "approver"}
    assert isinstance(for_user, NodeSucceededResult)
    async with runner.db.connect() as connection:
        rows = (
            await connection.execute(
                select(tasks).where(tasks.c.tenant_id == tenant).order_by(tasks.c.created_at)
            )
        ).all()
    assert [(r.assignee_role, r.assignee_user, r.title, r.status, r.run_id) for r in rows] == [
        ("approver", None, "Check deal", "open", command.run_id),
        (None, "ada@example.com", "Call back", "open", for_user.run_id),
    ]


# --- delivery ------------------------------------------------------------------------------------


async def test_bad_commands_are_dead_lettered_and_unknown_inputs_fail_without_stopping_the_runner(
    runner: Runner, server: LoopbackServer
):
    tenant = await runner.tenant()
    route = path()
    server.route(route, Answer(200, "fine"))
    dlq = TopicReader(
        runner.system.infra.kafka_bootstrap,
        runner.topic(NODES_READY_HTTP.dlq),
        1,
        DeadLetter.model_validate_json,
    )
    await dlq.start()
    try:
        await runner.producer.send_and_wait(
            runner.topic(NODES_READY_HTTP), b'{"type": "node.execute", "tenant_id": "x"}'
        )
        unsupported = await runner.run(tenant, "approval", {"title": "x"})
        invalid = await runner.run(tenant, "http_request", {"url": f"{server.url}{route}", "method": "TRACE"})
        fine = await runner.run(tenant, "http_request", {"url": f"{server.url}{route}"})
        (letter,) = await dlq.wait_for(lambda _: True)
    finally:
        await dlq.stop()

    assert failure(unsupported) == ("unsupported_node", False)
    assert failure(invalid) == ("invalid_input", False) and "method" in invalid.error.message
    assert isinstance(fine, NodeSucceededResult)
    assert "run_id" in letter.reason


async def test_a_command_whose_result_was_not_published_is_run_again_after_a_crash(
    infra: Infra, namespace: str
):
    """Offsets are committed only after the result is out: a runner killed mid-call leaves the
    command to the next runner, which answers it."""
    system = System(infra, namespace)
    try:
        quick_to_notice = {"MILLRACE_KAFKA_SESSION_TIMEOUT_MS": "6000"}
        system.start(("node-runner",), extra_env=quick_to_notice)
        opened = await open_runner(system)
        try:
            with loopback_server() as target:
                target.route("/hold", [Answer(200, "first try", delay_seconds=30), Answer(200, "second try")])
                tenant = await opened.tenant()
                command = opened.command(
                    tenant, "http_request", {"url": f"{target.url}/hold"}, timeout_seconds=60
                )
                await opened.send(command)
                deadline = time.monotonic() + 20
                while not target.requests_to("/hold") and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert system.stop("node-runner", sig=signal.SIGKILL) == -9

                system.start(("node-runner",), extra_env=quick_to_notice)
                result = await opened.result_of(command, timeout=40)

        finally:
            await close_runner(opened)
    finally:
        system.stop_all()

    assert isinstance(result, NodeSucceededResult) and result.output["body"] == "second try"
    assert len(target.requests_to("/hold")) == 2
    assert [r.causation_id for r in opened.results.seen].count(command.message_id) == 1
