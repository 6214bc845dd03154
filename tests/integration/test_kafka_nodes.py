"""Kafka triggers, publish nodes and topic grants against the real services, Kafka and PostgreSQL: a
platform operator grants topics through the API; a message on a granted topic runs its workflow once
(key, headers and offset in the trigger's data), even when it is delivered again; a malformed message
is dead-lettered with the reason and the next one runs; the publish node's message is read back with
its key, headers, value and offset; a topic not granted is refused on saving and at run time.

This broker has no authorizer, so the grants' ACLs are not applied here (MILLRACE_KAFKA_GRANT_ACLS is
off); that the services' principal gets exactly the ACLs a grant means is a unit test of the plan."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from millrace_common.contracts.messages.envelope import DeadLetter
from millrace_common.contracts.topics import KAFKA_GRANTED, ConsumerGroup, Namespace
from millrace_common.language.node_outputs import TRIGGER_PAYLOAD_PATHS

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.kafka import kafka_client
from tests.support.processes import System

pytestmark = pytest.mark.integration

SERVICES = ("gateway", "trigger", "orchestrator", "node-runner")


@dataclass
class World:
    system: System
    operator: httpx.Client
    acme: httpx.Client
    globex: httpx.Client
    acme_tenant: str
    env: dict[str, str]

    @property
    def bootstrap(self) -> str:
        return self.system.infra.kafka_bootstrap


@pytest.fixture(scope="module")
def world(infra: Infra, module_namespace: str) -> Iterator[World]:
    operators = f"ops{uuid.uuid4().hex[:6]}"
    env = {
        "MILLRACE_OPERATOR_TENANT": operators,
        "MILLRACE_KAFKA_GRANT_ACLS": "false",
        "MILLRACE_TRIGGER_KAFKA_DISCOVERY_SECONDS": "1",
    }
    system = System(infra, module_namespace)
    system.start(SERVICES, extra_env=env)
    try:
        accounts: dict[str, Account] = {
            name: provision_tenant(infra, module_namespace, f"{name}{uuid.uuid4().hex[:6]}")
            for name in ("acme", "globex")
        }
        accounts[operators] = provision_tenant(infra, module_namespace, operators)
        url = system.url("gateway")
        yield World(
            system,
            signed_in(url, accounts[operators]),
            signed_in(url, accounts["acme"]),
            signed_in(url, accounts["globex"]),
            accounts["acme"].tenant_id,
            env,
        )
    finally:
        system.stop_all()


def outside_topic(world: World, name: str) -> str:
    """A topic outside the namespace, as a team's own topic is."""
    topic = f"{name}-{uuid.uuid4().hex[:8]}"

    async def create() -> None:
        admin = AIOKafkaAdminClient(**kafka_client(world.bootstrap))
        await admin.start()
        try:
            await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
        finally:
            await admin.close()

    asyncio.run(create())
    return topic


def grant(world: World, tenant: str, topic: str, access: str) -> None:
    answer = world.operator.post(
        "/api/v1/admin/kafka-grants", json={"tenant_id": tenant, "topic": topic, "access": access}
    )
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["acls_applied"] is False and body["acl_error"] is None
    assert {"principal": "User:ANONYMOUS", "resource": f"TOPIC:LITERAL:{topic}", "operation": "DESCRIBE"} in (
        body["added"]
    )


def produce(world: World, topic: str, *messages: tuple[bytes | None, bytes, list[tuple[str, bytes]]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(**kafka_client(world.bootstrap), acks="all")
        await producer.start()
        try:
            for key, value, headers in messages:
                # One key, one partition: the messages keep their order.
                await producer.send_and_wait(topic, value, key=key, headers=headers, partition=0)
        finally:
            await producer.stop()

    asyncio.run(send())


def read_topic(world: World, topic: str, *, count: int, timeout: float = 30) -> list:
    async def read() -> list:
        consumer = AIOKafkaConsumer(
            topic, **kafka_client(world.bootstrap), auto_offset_reset="earliest", enable_auto_commit=False
        )
        await consumer.start()
        try:
            found: list = []
            deadline = time.monotonic() + timeout
            while len(found) < count and time.monotonic() < deadline:
                polled = await consumer.getmany(timeout_ms=500)
                found.extend(r for records in polled.values() for r in records)
            return found
        finally:
            await consumer.stop()

    return asyncio.run(read())


def workflow(api: httpx.Client, trigger: dict, *more_nodes: dict, activate: bool = True) -> httpx.Response:
    nodes = [
        {"id": "when", "type": "trigger", "position": {"x": 0, "y": 0}, "data": {"name": "When", **trigger}}
    ]
    nodes.extend(more_nodes)
    edges = [
        {"id": f"e{i}", "source": nodes[i]["id"], "target": nodes[i + 1]["id"]} for i in range(len(nodes) - 1)
    ]
    created = api.post(
        "/api/v1/workflows",
        json={"name": f"wf-{uuid.uuid4().hex[:6]}", "definition": {"nodes": nodes, "edges": edges}},
    )
    if created.status_code == 201 and activate:
        activated = api.post(f"/api/v1/workflows/{created.json()['id']}/activate", json={})
        assert activated.status_code == 200, activated.text
    return created


def publish_node(topic: str) -> dict:
    return {
        "id": "emit",
        "type": "kafka_publish",
        "position": {"x": 0, "y": 100},
        "data": {
            "name": "Emit",
            "topic": topic,
            "key": "{{ trigger.kafka.key }}",
            "headers": {
                "source": "{{ trigger.kafka.headers.source }}",
                "offset": "{{ trigger.kafka.offset }}",
            },
            "value": {"total": "{{ trigger.kafka.value.total }}", "seen": "millrace"},
        },
    }


def finished_runs(api: httpx.Client, workflow_id: str, count: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = api.get("/api/v1/runs", params={"workflow_id": workflow_id, "limit": 50}).json()["items"]
        if len(items) >= count and all(i["status"] not in ("running",) for i in items):
            return [api.get(f"/api/v1/runs/{i['run_id']}").json() for i in items]
        time.sleep(0.3)
    raise AssertionError(f"expected {count} finished run(s) of {workflow_id}, got {items}")


def node_of(run: dict, node_id: str) -> dict:
    [node] = [n for n in run["nodes"] if n["node_id"] == node_id]
    return node


def test_only_a_platform_operator_grants_topics_and_each_tenant_sees_its_own(world: World):
    topic = outside_topic(world, "grants")
    refused = world.acme.post(
        "/api/v1/admin/kafka-grants",
        json={"tenant_id": world.acme_tenant, "topic": topic, "access": "consume"},
    )
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    grant(world, world.acme_tenant, topic, "consume")
    grant(world, world.acme_tenant, topic, "produce")
    mine = world.acme.get("/api/v1/kafka/topics").json()["items"]
    assert {"topic": topic, "access": ["consume", "produce"]} in mine
    assert all(item["topic"] != topic for item in world.globex.get("/api/v1/kafka/topics").json()["items"])
    listed = world.operator.get("/api/v1/admin/kafka-grants", params={"topic": topic}).json()["items"]
    assert {(row["tenant_id"], row["access"]) for row in listed} == {
        (world.acme_tenant, "consume"),
        (world.acme_tenant, "produce"),
    }
    own = Namespace(world.system.namespace).topic(KAFKA_GRANTED.dlq)
    platform = world.operator.post(
        "/api/v1/admin/kafka-grants", json={"tenant_id": world.acme_tenant, "topic": own, "access": "consume"}
    )
    assert platform.status_code == 422 and platform.json()["code"] == "platform_topic"
    nobody = world.operator.post(
        "/api/v1/admin/kafka-grants",
        json={"tenant_id": "no-such-tenant", "topic": topic, "access": "consume"},
    )
    assert nobody.status_code == 404
    revoked = world.operator.delete(f"/api/v1/admin/kafka-grants/{world.acme_tenant}/{topic}/produce")
    assert revoked.status_code == 200, revoked.text
    assert (
        world.operator.delete(f"/api/v1/admin/kafka-grants/{world.acme_tenant}/{topic}/produce").status_code
        == 404
    )
    assert {"topic": topic, "access": ["consume"]} in world.acme.get("/api/v1/kafka/topics").json()["items"]


def test_a_topic_the_tenant_was_not_granted_is_refused_on_saving_with_its_pointer(world: World):
    topic = outside_topic(world, "foreign")
    grant(world, world.acme_tenant, topic, "consume")
    trigger = {"kind": "kafka", "topic": topic}
    refused = workflow(world.globex, trigger)
    assert refused.status_code == 422, refused.text
    problem = refused.json()
    assert problem["code"] == "invalid_definition"
    assert problem["errors"] == [
        {
            "pointer": "/definition/nodes/0/data/topic",
            "detail": f"the tenant was not granted the topic {topic!r} to consume"
            " (a platform operator grants topics)",
        }
    ]
    # acme may consume it, but was not granted it to produce to.
    publishing = workflow(world.acme, {"kind": "manual"}, publish_node(topic))
    assert publishing.status_code == 422
    assert [e["pointer"] for e in publishing.json()["errors"]] == ["/definition/nodes/1/data/topic"]


def test_each_message_runs_once_with_its_key_headers_and_offset_and_a_malformed_one_is_dead_lettered(
    world: World,
):
    source, sink = outside_topic(world, "orders"), outside_topic(world, "audit")
    grant(world, world.acme_tenant, source, "consume")
    grant(world, world.acme_tenant, sink, "produce")
    created = workflow(world.acme, {"kind": "kafka", "topic": source}, publish_node(sink))
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    time.sleep(3)  # the trigger service finds the new topic within its discovery interval (1 s here)
    produce(
        world,
        source,
        (b"order-1", b'{"total": 5}', [("source", b"shop")]),
        (b"order-2", b"this is not JSON", []),
        (b"order-3", b'{"total": 7}', [("source", b"till")]),
    )

    runs = finished_runs(world.acme, workflow_id, 2)
    assert sorted(run["status"] for run in runs) == ["completed", "completed"]
    by_offset = {run["trigger"]["data"]["kafka"]["offset"]: run for run in runs}
    assert sorted(by_offset) == [0, 2]
    first = by_offset[0]["trigger"]["data"]["kafka"]
    assert (first["topic"], first["partition"], first["key"]) == (source, 0, "order-1")
    assert first["headers"] == {"source": "shop"} and first["value"] == {"total": 5}
    # Exactly the paths node-reference.md documents for the kind.
    real = {"trigger.kind"} | {f"trigger.kafka.{member}" for member in first}
    assert real == set(TRIGGER_PAYLOAD_PATHS["kafka"])

    # What the publish node wrote, read back: key, headers, value, and the offset it reported.
    written = read_topic(world, sink, count=2)
    assert len(written) == 2
    outputs = [node_of(run, "emit")["output"] for run in runs]
    for record in written:
        headers = dict(record.headers)
        source_offset = int(headers["offset"].decode())
        expected_key, expected_source, total = {0: (b"order-1", b"shop", 5), 2: (b"order-3", b"till", 7)}[
            source_offset
        ]
        assert record.key == expected_key and headers["source"] == expected_source
        assert "millrace-idempotency-key" in headers
        assert json.loads(record.value) == {"total": total, "seen": "millrace"}
        assert {"topic": sink, "partition": record.partition, "offset": record.offset} in outputs

    [letter] = [
        DeadLetter.model_validate_json(r.value)
        for r in read_topic(
            world, Namespace(world.system.namespace).topic(KAFKA_GRANTED.dlq), count=50, timeout=3
        )
        if DeadLetter.model_validate_json(r.value).source_topic == source
    ]
    assert letter.offset == 1 and letter.key == "order-2" and "not JSON" in letter.reason
    assert letter.raw_value == "this is not JSON"

    # Delivered again: the trigger service restarts with its group's offsets and positions wound back.
    world.system.stop("trigger")
    rewind(world, source)
    world.system.start(("trigger",), extra_env=world.env)
    # It reads both messages again (and decides both runs again, as duplicates), and starts none.
    deadline = time.monotonic() + 60
    while duplicates(world) < 2:
        assert time.monotonic() < deadline, "the trigger service did not read the messages again"
        time.sleep(0.5)
    assert len(world.acme.get("/api/v1/runs", params={"workflow_id": workflow_id}).json()["items"]) == 2
    firings = sql(
        world, "select count(*) as n from trigger_firings where workflow_id = cast(:w as uuid)", w=workflow_id
    )
    assert firings[0]["n"] == 2


def duplicates(world: World) -> float:
    body = httpx.get(f"{world.system.url('trigger')}/metrics", timeout=5).text
    lines = [
        line
        for line in body.splitlines()
        if line.startswith('millrace_trigger_duplicates_total{source="kafka"}')
    ]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


def rewind(world: World, topic: str) -> None:
    group = Namespace(world.system.namespace).group(ConsumerGroup.TRIGGER_KAFKA)

    async def commit_zero() -> None:
        consumer = AIOKafkaConsumer(**kafka_client(world.bootstrap), group_id=group, enable_auto_commit=False)
        await consumer.start()
        try:
            partitions = [TopicPartition(topic, p) for p in (0, 1)]
            consumer.assign(partitions)
            await consumer.commit({p: 0 for p in partitions})
        finally:
            await consumer.stop()

    asyncio.run(commit_zero())
    sql(world, "delete from consumer_positions where topic = :t returning topic", t=topic)


def sql(world: World, query: str, **params: object) -> list[dict]:
    from sqlalchemy import create_engine, text

    engine = create_engine(
        world.system.infra.database_url, connect_args={"options": f"-csearch_path={world.system.namespace}"}
    )
    try:
        with engine.begin() as connection:
            return [dict(row._mapping) for row in connection.execute(text(query), params)]
    finally:
        engine.dispose()


def test_a_publish_to_a_topic_whose_grant_was_revoked_fails_the_node_with_topic_not_granted(world: World):
    sink = outside_topic(world, "revoked")
    grant(world, world.acme_tenant, sink, "produce")
    node = publish_node(sink)
    node["data"] = {"name": "Emit", "topic": sink, "value": {"n": 1}}
    created = workflow(world.acme, {"kind": "manual"}, node)
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    assert (
        world.operator.delete(f"/api/v1/admin/kafka-grants/{world.acme_tenant}/{sink}/produce").status_code
        == 200
    )
    started = world.acme.post(f"/api/v1/workflows/{workflow_id}/runs", json={"input": {}})
    assert started.status_code == 202, started.text
    [run] = finished_runs(world.acme, workflow_id, 1)
    assert run["status"] == "failed"
    error = node_of(run, "emit")["error"]
    assert error["type"] == "topic_not_granted" and sink in error["message"]
    assert read_topic(world, sink, count=1, timeout=2) == []


def test_the_node_types_list_the_publish_node_and_the_kafka_trigger_kind_with_their_schemas(world: World):
    types = {t["type"]: t for t in world.acme.get("/api/v1/node-types").json()}
    publish = types["kafka_publish"]
    assert publish["category"] == "Kafka"
    assert {"topic", "key", "headers", "value"} <= set(publish["schema"]["properties"])
    assert "topic" in publish["schema"]["required"]
    trigger = types["trigger"]["schema"]["properties"]
    assert "kafka" in trigger["kind"]["enum"]
    assert {"topic", "start_from"} <= set(trigger)


def test_a_topic_whose_grant_was_revoked_is_no_longer_read_for_the_tenant(world: World):
    source = outside_topic(world, "revocable")
    grant(world, world.acme_tenant, source, "consume")
    created = workflow(world.acme, {"kind": "kafka", "topic": source})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    time.sleep(3)
    produce(world, source, (b"a", b'{"n": 1}', []))
    [run] = finished_runs(world.acme, workflow_id, 1)
    assert run["trigger"]["data"]["kafka"]["offset"] == 0
    revoked = world.operator.delete(f"/api/v1/admin/kafka-grants/{world.acme_tenant}/{source}/consume")
    assert revoked.status_code == 200
    produce(world, source, (b"b", b'{"n": 2}', []))
    time.sleep(6)  # several discovery intervals: the topic is dropped, and no batch finds a candidate
    assert len(world.acme.get("/api/v1/runs", params={"workflow_id": workflow_id}).json()["items"]) == 1
    firings = sql(
        world, "select count(*) as n from trigger_firings where workflow_id = cast(:w as uuid)", w=workflow_id
    )
    assert firings[0]["n"] == 1
