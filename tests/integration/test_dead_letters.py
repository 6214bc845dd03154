"""Dead letters against a real gateway process, real Kafka and PostgreSQL: the dead-letter topics
are made with their own partitions and retention; what lands in them is indexed, listed and filtered
per tenant (all tenants for a platform operator), shown with its original message, replayed once (the
original bytes, key and headers back on the original topic; a second replay is refused) or discarded;
the pending ones are a gauge."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from millrace_common.contracts.messages.envelope import DeadLetterCause
from millrace_common.contracts.messages.records import RecordCreated
from millrace_common.contracts.topics import RECORDS_EVENTS, RUNS_COMMANDS, ConsumerGroup, Namespace
from millrace_common.platform.kafka import DeadLetters
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.producer import Producer
from prometheus_client import CollectorRegistry

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.kafka import kafka_client
from tests.support.processes import System

pytestmark = pytest.mark.integration


@dataclass
class World:
    system: System
    acme: httpx.Client
    globex: httpx.Client
    operator: httpx.Client
    acme_tenant: str
    globex_tenant: str


@pytest.fixture(scope="module")
def world(infra: Infra, module_namespace: str) -> Iterator[World]:
    operators = f"ops{uuid.uuid4().hex[:6]}"
    system = System(infra, module_namespace)
    system.start(("gateway",), extra_env={"MILLRACE_OPERATOR_TENANT": operators})
    try:
        accounts: dict[str, Account] = {
            name: provision_tenant(infra, module_namespace, f"{name}{uuid.uuid4().hex[:6]}")
            for name in ("acme", "globex")
        }
        ops = provision_tenant(infra, module_namespace, operators)
        url = system.url("gateway")
        yield World(
            system,
            signed_in(url, accounts["acme"]),
            signed_in(url, accounts["globex"]),
            signed_in(url, ops),
            accounts["acme"].tenant_id,
            accounts["globex"].tenant_id,
        )
    finally:
        system.stop_all()


async def dead_letter(
    infra: Infra,
    namespace: str,
    sent: list[tuple[bytes, bytes | None, list]],
    reason: str,
    *,
    error: BaseException | None = None,
) -> None:
    """Put messages on records.events and set each aside as a consumer does (``DeadLetters``)."""
    names = Namespace(namespace)
    producer = AIOKafkaProducer(**kafka_client(infra.kafka_bootstrap))
    await producer.start()
    try:
        records = []
        for value, key, headers in sent:
            meta = await producer.send_and_wait(names.topic(RECORDS_EVENTS), value, key=key, headers=headers)
            records.append((meta.partition, meta.offset, value, key, headers))
    finally:
        await producer.stop()
    kafka = Producer(infra.settings(namespace))
    await kafka.start()
    try:
        letters = DeadLetters(kafka, names, ConsumerGroup.TRIGGER, ConsumerMetrics(CollectorRegistry()))
        for partition, offset, value, key, headers in records:
            record = ConsumerRecord(
                names.topic(RECORDS_EVENTS), partition, offset, 0, 0, key, value, None, 0, len(value), headers
            )
            await letters.send(RECORDS_EVENTS, record, reason, error=error)
    finally:
        await kafka.stop()


def listed(api: httpx.Client, **params: object) -> list[dict]:
    answer = api.get("/api/v1/dead-letters", params=params)
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def wait_listed(api: httpx.Client, count: int, timeout: float = 30, **params: object) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = listed(api, **params)
        if len(found) >= count:
            return found
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} dead letters listed for {params} within {timeout} s")


def read_topic(infra: Infra, topic: str) -> list:
    async def read() -> list:
        consumer = AIOKafkaConsumer(
            topic, **kafka_client(infra.kafka_bootstrap), auto_offset_reset="earliest"
        )
        await consumer.start()
        try:
            found = []
            while True:
                polled = await consumer.getmany(timeout_ms=1500)
                if not polled:
                    return found
                found.extend(r for records in polled.values() for r in records)
        finally:
            await consumer.stop()

    return asyncio.run(read())


def test_dead_letter_topics_have_their_own_partitions_and_retention(infra: Infra, module_namespace: str):
    async def describe() -> tuple[list, list]:
        admin = AIOKafkaAdminClient(**kafka_client(infra.kafka_bootstrap))
        await admin.start()
        try:
            name = Namespace(module_namespace).topic(RUNS_COMMANDS.dlq)
            # The namespace's topics were created just before (this is the module's first test): a
            # broker answers CreateTopics once the controller committed them, and its own metadata can
            # lag behind for a moment, describing the topic with no partitions yet.
            deadline = time.monotonic() + 15
            topics = await admin.describe_topics([name])
            while not topics[0]["partitions"] and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
                topics = await admin.describe_topics([name])
            configs = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
            return topics, configs
        finally:
            await admin.close()

    topics, configs = asyncio.run(describe())
    assert len(topics[0]["partitions"]) == 3
    entries = {
        e["config_names"]: e["config_value"]
        for answer in configs
        for resource in answer.to_object()["resources"]
        for e in resource["config_entries"]
    }
    assert entries["retention.ms"] == str(30 * 24 * 3600 * 1000)


def test_a_tenant_admin_lists_and_reads_only_the_dead_letters_naming_their_tenant(world: World):
    ns = world.system.namespace
    acme_event = RecordCreated(
        tenant_id=world.acme_tenant, pipeline_id="deals", record_id="r1", data={"n": 1}
    )
    globex_event = RecordCreated(tenant_id=world.globex_tenant, pipeline_id="deals", record_id="r2", data={})
    asyncio.run(
        dead_letter(
            world.system.infra,
            ns,
            [
                (acme_event.to_bytes(), b"r1", [("trace", b"abc")]),
                (globex_event.to_bytes(), b"r2", []),
                (b"\xff\xfenot json", None, []),
            ],
            "handling failed 3 times: ProgrammingError: permission denied for table trigger_firings",
            error=RuntimeError("permission denied"),
        )
    )
    everything = wait_listed(world.operator, 3, reason="permission denied for table")
    assert {letter["tenant_id"] for letter in everything} >= {world.acme_tenant, world.globex_tenant, None}

    (acme_letter,) = listed(world.acme, reason="permission denied for table")
    assert acme_letter["tenant_id"] == world.acme_tenant
    assert acme_letter["topic"] == "records.events" and acme_letter["state"] == "pending"
    assert acme_letter["cause"] == "failed" and acme_letter["consumer_group"].endswith("trigger")

    shown = world.acme.get(f"/api/v1/dead-letters/{acme_letter['id']}").json()
    assert shown["value_kind"] == "json" and shown["value"]["record_id"] == "r1"
    assert shown["headers"] == {"trace": "abc"} and shown["key"] == "r1"
    assert "RuntimeError" in shown["trace"]

    globex_id = next(letter["id"] for letter in everything if letter["tenant_id"] == world.globex_tenant)
    assert world.acme.get(f"/api/v1/dead-letters/{globex_id}").status_code == 404
    assert world.acme.post(f"/api/v1/dead-letters/{globex_id}/replay").status_code == 404
    binary = next(letter for letter in everything if letter["tenant_id"] is None)
    assert world.operator.get(f"/api/v1/dead-letters/{binary['id']}").json()["value_kind"] == "binary"
    assert listed(world.acme, tenant=world.globex_tenant) == []

    assert listed(world.operator, tenant=world.globex_tenant, topic="records.events")[0]["id"] == globex_id
    assert listed(world.operator, topic="runs.commands") == []
    assert listed(world.operator, cause="undecodable", reason="permission denied for table") == []
    assert len(listed(world.operator, since=acme_letter["dead_lettered_at"], reason="permission denied")) >= 1
    assert listed(world.operator, until="2000-01-01T00:00:00Z") == []

    bad = world.acme.get("/api/v1/dead-letters", params={"topic": "no.such.topic"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["pointer"] == "/query/topic"


def test_a_replay_sends_the_original_message_back_once(world: World):
    ns = world.system.namespace
    event = RecordCreated(tenant_id=world.acme_tenant, pipeline_id="deals", record_id="once", data={"n": 2})
    asyncio.run(
        dead_letter(world.system.infra, ns, [(event.to_bytes(), b"once", [("h", b"v")])], "replay me please")
    )
    (letter,) = wait_listed(world.acme, 1, reason="replay me please")
    assert letter["cause"] == DeadLetterCause.REJECTED

    first = world.acme.post(f"/api/v1/dead-letters/{letter['id']}/replay")
    assert first.status_code == 200, first.text
    assert first.json()["state"] == "replayed" and first.json()["replayed_by"].startswith("user:")
    second = world.acme.post(f"/api/v1/dead-letters/{letter['id']}/replay")
    assert second.status_code == 409 and second.json()["code"] == "already_replayed"
    assert "replayed already" in second.json()["detail"]
    assert (
        world.acme.post(f"/api/v1/dead-letters/{letter['id']}/discard").json()["code"] == "already_replayed"
    )

    copies = [
        r
        for r in read_topic(world.system.infra, Namespace(ns).topic(RECORDS_EVENTS))
        if r.value == event.to_bytes()
    ]
    assert len(copies) == 2  # the original, and the one replay
    assert copies[1].key == b"once" and copies[1].headers == (("h", b"v"),)
    assert listed(world.acme, reason="replay me please", state="pending") == []


def test_a_discarded_dead_letter_no_longer_lists_as_pending_and_cannot_be_replayed(world: World):
    event = RecordCreated(tenant_id=world.globex_tenant, pipeline_id="deals", record_id="gone", data={})
    asyncio.run(
        dead_letter(world.system.infra, world.system.namespace, [(event.to_bytes(), b"g", [])], "drop me")
    )
    (letter,) = wait_listed(world.globex, 1, reason="drop me")
    discarded = world.globex.post(f"/api/v1/dead-letters/{letter['id']}/discard").json()
    assert discarded["state"] == "discarded" and discarded["discarded_by"].startswith("user:")
    assert listed(world.globex, reason="drop me", state="pending") == []
    refused = world.globex.post(f"/api/v1/dead-letters/{letter['id']}/replay")
    assert refused.status_code == 409 and refused.json()["code"] == "wrong_state"


def test_only_admins_reach_dead_letters(world: World):
    viewer_email = f"viewer-{uuid.uuid4().hex[:6]}@example.com"
    created = world.acme.post(
        "/api/v1/users", json={"email": viewer_email, "password": "a-long-password", "roles": ["viewer"]}
    )
    assert created.status_code == 201, created.text
    viewer = signed_in(
        world.system.url("gateway"), Account(world.acme_tenant, viewer_email, "a-long-password")
    )
    assert viewer.get("/api/v1/dead-letters").status_code == 403
    assert httpx.get(f"{world.system.url('gateway')}/api/v1/dead-letters").status_code == 401


def test_pending_dead_letters_are_a_gauge_by_topic_and_reason(world: World):
    """The three failed letters of the first test are still pending (the gauge is read every 5 s)."""
    wanted = 'millrace_dead_letters_pending{reason="failed",topic="records.events"}'
    deadline = time.monotonic() + 20
    values: list[float] = []
    while time.monotonic() < deadline:
        text = httpx.get(f"{world.system.url('gateway')}/metrics").text
        values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted)]
        if values and values[0] >= 3:
            return
        time.sleep(0.5)
    raise AssertionError(f"the pending gauge reads {values}, not 3 or more")
