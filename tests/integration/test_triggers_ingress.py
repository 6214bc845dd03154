"""Outside producers' record events on their tenant's ingress topic (``tenant.<tenant>.records.ingress``)
against a real trigger service, Kafka and PostgreSQL: the tenant is the topic's, an event claiming
another tenant is dead-lettered and starts nothing anywhere, and ``millrace-admin grants`` keeps its
rows (this broker has no authorizer, so applying them fails, said as such). That the broker refuses a
principal another tenant's topic is tests/cluster/test_tenant_producers.py, on a secured broker."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer
from millrace_common.contracts.messages.records import RecordCreated
from millrace_common.contracts.topics import RECORDS_INGRESS, Namespace
from millrace_common.platform.topic_admin import ensure_tenant_topic

from tests.integration.test_triggers_fixtures import Rig, rig_for
from tests.support.infra import Infra
from tests.support.kafka import kafka_client
from tests.support.processes import System

pytestmark = pytest.mark.integration

MISMATCH = "is not the tenant of this ingress topic"


@pytest.fixture(scope="module", name="ingress_system")
def ingress_system_fixture(infra: Infra, module_namespace: str) -> Iterator[System]:
    running = System(infra, module_namespace)
    try:
        running.start(("gateway", "trigger"), extra_env={"MILLRACE_TRIGGER_INGRESS_DISCOVERY_SECONDS": "1"})
        yield running
    finally:
        running.stop_all()


@pytest.fixture(name="two")
def two_tenants_fixture(ingress_system: System) -> Iterator[tuple[Rig, Rig]]:
    for a in rig_for(ingress_system, f"tenant-{uuid.uuid4().hex[:8]}.a"):
        for b in rig_for(ingress_system, f"tenant-{uuid.uuid4().hex[:8]}"):
            yield a, b


def ingress(rig: Rig) -> str:
    return Namespace(rig.system.namespace).tenant_topic(RECORDS_INGRESS, rig.tenant)


def produce(bootstrap: str, topic: str, *events: RecordCreated) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(**kafka_client(bootstrap), acks="all")
        await producer.start()
        try:
            for event in events:
                await producer.send_and_wait(topic, event.to_bytes(), key=event.record_id.encode())
        finally:
            await producer.stop()

    asyncio.run(send())


def make_topic(rig: Rig) -> None:
    settings = rig.system.infra.settings(rig.system.namespace)
    asyncio.run(ensure_tenant_topic(settings, rig.topics, RECORDS_INGRESS, rig.tenant))


def wait_for(condition, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_an_event_on_a_tenant_s_ingress_topic_starts_that_tenant_s_workflow(two: tuple[Rig, Rig]):
    a, b = two
    mine = a.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    theirs = b.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    make_topic(a)  # after the trigger service started: it finds the new topic by its pattern
    event = RecordCreated(tenant_id=a.tenant, pipeline_id="deals", record_id="d-1", data={"amount": 5})
    produce(a.bootstrap, ingress(a), event)

    wait_for(lambda: len(a.start_runs(mine)) == 1)
    [run] = a.start_runs(mine)
    assert run.idempotency_key == f"{event.message_id}:{mine}"
    assert b.start_runs(theirs) == []


def test_an_event_claiming_another_tenant_starts_nothing_and_is_dead_lettered_with_the_reason(
    two: tuple[Rig, Rig],
):
    a, b = two
    mine = a.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    theirs = b.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    make_topic(a)
    forged = RecordCreated(tenant_id=b.tenant, pipeline_id="deals", record_id="d-7", data={"x": 1})
    honest = RecordCreated(tenant_id=a.tenant, pipeline_id="deals", record_id="d-7", data={"x": 2})
    produce(a.bootstrap, ingress(a), forged, honest)  # one key: the forged one is decided first

    wait_for(lambda: len(a.start_runs(mine)) == 1)
    [run] = a.start_runs(mine)
    assert run.trigger.data["record"]["data"] == {"x": 2}
    assert b.start_runs(theirs) == []
    [letter] = [letter for letter in a.dead_letters(RECORDS_INGRESS) if letter.source_topic == ingress(a)]
    assert MISMATCH in letter.reason and repr(b.tenant) in letter.reason and repr(a.tenant) in letter.reason
    assert json.loads(letter.raw_value)["message_id"] == str(forged.message_id)
    assert letter.cause == "rejected"
    assert b.firings(theirs) == []
    # The gateway indexes it like every dead letter; it cannot be replayed (the producer sends again).
    wait_for(lambda: a.sql("select count(*) as n from dead_letters where topic = 'records.ingress'")[0]["n"])


def admin(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "millrace-admin"), *args],
        env={**os.environ, **system.infra.env(system.namespace)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_grants_are_kept_in_the_database_and_a_broker_without_authorizer_is_said_so(two: tuple[Rig, Rig]):
    a, _ = two
    added = admin(a.system, "grants", "add", "--principal", "crm", "--tenant", a.tenant, "--by", "test")
    assert added.returncode == 2, added.stderr
    assert "No Authorizer is configured" in added.stderr and "grants sync" in added.stderr
    listed = admin(a.system, "grants", "list", "--tenant", a.tenant, "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["principal"], row["tenant_id"], row["kind"], row["created_by"]) == (
        "User:crm",
        a.tenant,
        "records-ingress",
        "test",
    )
    assert ingress(a) in asyncio.run(_topics(a.bootstrap)), "the grant made the tenant's topic"
    unknown = admin(a.system, "grants", "add", "--principal", "crm", "--tenant", "no-such-tenant")
    assert unknown.returncode == 1 and "no tenant 'no-such-tenant'" in unknown.stderr
    bad = admin(a.system, "grants", "add", "--principal", "a,b", "--tenant", a.tenant)
    assert bad.returncode == 2 and "user name" in bad.stderr  # argparse's usage error
    never = admin(a.system, "grants", "revoke", "--principal", "erp", "--tenant", a.tenant)
    assert never.returncode == 1 and "holds no records-ingress grant" in never.stderr


async def _topics(bootstrap: str) -> set[str]:
    from aiokafka.admin import AIOKafkaAdminClient

    client = AIOKafkaAdminClient(**kafka_client(bootstrap))
    await client.start()
    try:
        return set(await client.list_topics())
    finally:
        await client.close()
