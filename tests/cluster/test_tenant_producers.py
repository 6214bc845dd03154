"""A producer principal of tenant A cannot start runs in tenant B, and the broker is what stops it.

On the cluster tier's secured cluster (SASL_SSL, StandardAuthorizer) when the session runs on it, else
on a Kafka node of the test's own that enforces ACLs (``tests/support/secured_kafka.py``), with the
gateway and the trigger service as real processes: ``millrace-admin producers create`` makes a SCRAM
user per tenant and grants it its tenant's ingress topic; that user's events start runs in its tenant;
the broker refuses it another tenant's topic and the platform's ``records.events``
(``TopicAuthorizationFailed``); an event on its own topic claiming the other tenant is dead-lettered
and starts nothing; ``grants revoke`` takes the access away, and ``grants sync`` removes an ACL that no
grant means and changes nothing the second time."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError
from millrace_common.contracts.messages.records import RecordCreated
from millrace_common.contracts.topics import RECORDS_EVENTS, RECORDS_INGRESS, Namespace
from millrace_common.platform.kafka_security import tls_context
from millrace_gateway.adapters.kafka_tools import KafkaTools
from millrace_gateway.domain.grants import Acl
from millrace_gateway.settings import GatewaySettings

from tests.integration.test_triggers_fixtures import Rig, rig_for
from tests.support.infra import Infra, create_namespace, drop_namespace
from tests.support.processes import System
from tests.support.secured_kafka import SecuredKafka, secured_kafka

pytestmark = pytest.mark.e2e

MISMATCH = "is not the tenant of this ingress topic"


@dataclass
class World:
    node: SecuredKafka
    system: System
    a: Rig
    b: Rig
    passwords: dict[str, str]
    producer_options: dict[str, Any]

    def topic(self, rig: Rig) -> str:
        return Namespace(self.system.namespace).tenant_topic(RECORDS_INGRESS, rig.tenant)

    def admin(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(Path(sys.executable).parent / "millrace-admin"), *args],
            env={**os.environ, **self.system.infra.env(self.system.namespace), **env},
            capture_output=True,
            text=True,
            timeout=180,
        )

    def produce_as(self, user: str, topic: str, *events: RecordCreated) -> None:
        async def send() -> None:
            producer = AIOKafkaProducer(
                bootstrap_servers=self.node.outside,
                **self.producer_options,
                sasl_mechanism="SCRAM-SHA-512",
                sasl_plain_username=user,
                sasl_plain_password=self.passwords[user],
                acks="all",
                request_timeout_ms=15_000,
            )
            await producer.start()
            try:
                for event in events:
                    await producer.send_and_wait(topic, event.to_bytes(), key=event.record_id.encode())
            finally:
                await producer.stop()

        asyncio.run(send())

    def tools(self) -> KafkaTools:
        return KafkaTools(GatewaySettings(kafka_bootstrap=self.node.inside, namespace=self.system.namespace))


def _session_cluster_is_secured() -> bool:
    return os.environ.get("MILLRACE_KAFKA_SECURITY_PROTOCOL", "PLAINTEXT").startswith("SASL_")


@contextmanager
def _without_session_kafka_settings() -> Iterator[None]:
    """The platform's side talks to the test node's PLAINTEXT listener: no security setting of the
    session's Kafka may reach the services or the tools started meanwhile."""
    saved = {k: v for k, v in os.environ.items() if k.startswith("MILLRACE_KAFKA_")}
    for key in saved:
        del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(saved)


@contextmanager
def _kafka(infra: Infra, directory: Path) -> Iterator[tuple[SecuredKafka, dict[str, Any]]]:
    """The secured cluster of the cluster tier when the session runs on it (SASL with its CA, one
    listener for all), else a node of the test's own; with a producer's security options."""
    if _session_cluster_is_secured():
        protocol = os.environ["MILLRACE_KAFKA_SECURITY_PROTOCOL"]
        options: dict[str, Any] = {"security_protocol": protocol}
        if protocol == "SASL_SSL":
            ca_file = os.environ.get("MILLRACE_KAFKA_SSL_CA_FILE")
            options["ssl_context"] = tls_context(Path(ca_file) if ca_file else None, None, None)
        yield SecuredKafka(infra.kafka_bootstrap, infra.kafka_bootstrap), options
        return
    with _without_session_kafka_settings(), secured_kafka(directory) as node:
        yield node, {"security_protocol": "SASL_PLAINTEXT"}


@pytest.fixture(scope="module", name="world")
def world_fixture(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with _kafka(infra, tmp_path_factory.mktemp("secured-kafka")) as (node, producer_options):
        local = Infra(node.inside, infra.database_url)
        namespace = f"t{uuid.uuid4().hex[:12]}"
        create_namespace(local, namespace)
        system = System(local, namespace)
        try:
            system.start(
                ("gateway", "trigger"), extra_env={"MILLRACE_TRIGGER_INGRESS_DISCOVERY_SECONDS": "1"}
            )
            for a in rig_for(system, f"acme-{uuid.uuid4().hex[:6]}.eu"):
                for b in rig_for(system, f"beta-{uuid.uuid4().hex[:6]}"):
                    yield World(node, system, a, b, {}, producer_options)
        finally:
            system.stop_all()
            drop_namespace(local, namespace)


def wait_for(condition, timeout: float = 45) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def event_of(rig_or_tenant: Rig | str, record_id: str, **data: object) -> RecordCreated:
    tenant = rig_or_tenant if isinstance(rig_or_tenant, str) else rig_or_tenant.tenant
    return RecordCreated(tenant_id=tenant, pipeline_id="deals", record_id=record_id, data=data)


def test_producers_are_created_per_tenant_with_their_grant_topic_and_acl(world: World):
    for rig, user in ((world.a, "crm-a"), (world.b, "crm-b")):
        password = f"pw-{uuid.uuid4().hex}"
        created = world.admin(
            "producers", "create", "--tenant", rig.tenant, "--user", user, MILLRACE_PRODUCER_PASSWORD=password
        )
        assert created.returncode == 0, created.stderr
        printed = dict(line.split("\t", 1) for line in created.stdout.splitlines() if "\t" in line)
        assert printed["user"] == user and printed["password"] == password
        assert printed["topic"] == world.topic(rig) and printed["mechanism"] == "SCRAM-SHA-512"
        assert "added\tUser:" + user in created.stdout
        world.passwords[user] = password
    listed = world.admin("grants", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert {(r["principal"], r["tenant_id"]) for r in rows} == {
        ("User:crm-a", world.a.tenant),
        ("User:crm-b", world.b.tenant),
    }


def test_a_producer_s_events_start_runs_in_its_tenant(world: World):
    mine = world.a.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    event = event_of(world.a, "d-1", amount=5)
    world.produce_as("crm-a", world.topic(world.a), event)
    wait_for(lambda: len(world.a.start_runs(mine)) == 1)
    assert world.a.start_runs(mine)[0].idempotency_key == f"{event.message_id}:{mine}"


def test_the_broker_refuses_a_producer_another_tenant_s_topic_and_the_platform_s(world: World):
    theirs = world.b.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    with pytest.raises(TopicAuthorizationFailedError):
        world.produce_as("crm-a", world.topic(world.b), event_of(world.b, "d-2"))
    with pytest.raises(TopicAuthorizationFailedError):
        world.produce_as(
            "crm-a", Namespace(world.system.namespace).topic(RECORDS_EVENTS), event_of(world.b, "d-3")
        )
    # What B's own producer sends starts B's run; nothing of A's producer got there.
    world.produce_as("crm-b", world.topic(world.b), event_of(world.b, "d-4"))
    wait_for(lambda: len(world.b.start_runs(theirs)) >= 1)
    time.sleep(2)
    assert [run.trigger.data["record"]["id"] for run in world.b.start_runs(theirs)] == ["d-4"]


def test_an_event_on_its_own_topic_claiming_another_tenant_starts_nothing_and_is_dead_lettered(world: World):
    mine = world.a.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    theirs = world.b.active_workflow({"kind": "record_created", "pipeline_ids": ["deals"]})
    forged, honest = event_of(world.b, "d-5"), event_of(world.a, "d-5")
    world.produce_as("crm-a", world.topic(world.a), forged, honest)
    wait_for(lambda: len(world.a.start_runs(mine)) == 1)
    assert world.b.start_runs(theirs) == []
    [letter] = [
        letter
        for letter in world.a.dead_letters(RECORDS_INGRESS)
        if json.loads(letter.raw_value)["message_id"] == str(forged.message_id)
    ]
    assert MISMATCH in letter.reason and letter.source_topic == world.topic(world.a)


def test_revoking_takes_the_access_away_and_sync_reconciles_the_broker_with_the_grants(world: World):
    revoked = world.admin("grants", "revoke", "--principal", "crm-a", "--tenant", world.a.tenant)
    assert revoked.returncode == 0, revoked.stderr
    assert "removed\tUser:crm-a" in revoked.stdout
    with pytest.raises(TopicAuthorizationFailedError):
        world.produce_as("crm-a", world.topic(world.a), event_of(world.a, "d-6"))

    tools = world.tools()
    stray = Acl("User:mallory", "TOPIC", "LITERAL", world.topic(world.b), "WRITE")
    foreign = Acl("User:mallory", "GROUP", "LITERAL", f"{world.system.namespace}.elsewhere", "READ")
    asyncio.run(tools.add(stray))
    asyncio.run(tools.add(foreign))
    dry = world.admin("grants", "sync", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"to remove\tUser:mallory\tWRITE\tTOPIC:LITERAL:{world.topic(world.b)}" in dry.stdout
    assert stray in asyncio.run(tools.acls())
    synced = world.admin("grants", "sync")
    assert synced.returncode == 0, synced.stderr
    assert "ACLs added: 0, removed: 1" in synced.stderr
    again = world.admin("grants", "sync")
    assert "ACLs added: 0, removed: 0" in again.stderr
    held = asyncio.run(tools.acls())
    assert stray not in held and foreign in held
    assert Acl("User:crm-b", "TOPIC", "LITERAL", world.topic(world.b), "WRITE") in held
    asyncio.run(tools.remove(foreign))
