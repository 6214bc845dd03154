"""Topic grants are enforced by the broker as the services' ACLs: before a grant the services'
principal can neither read nor write an outside topic; a ``consume`` grant lets it read the topic in
the Kafka-trigger group (and still not write), a ``produce`` grant lets it write; a revocation takes
exactly that away again, and the broker then holds exactly the ACLs the remaining grant means.

On the cluster tier's secured cluster when the session runs on it, else on a Kafka node of the test's
own that enforces ACLs (``tests/support/secured_kafka.py``); the services' principal is a SCRAM user of
the test's own, so that the broker (not a super user's rights) decides."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from millrace_common.contracts.topics import ConsumerGroup, Namespace
from millrace_common.platform.db import create_engine
from millrace_gateway.adapters.kafka_tools import KafkaTools
from millrace_gateway.domain.topic_grants import TopicAccess, TopicGrant, topic_acls
from millrace_gateway.service_layer.topic_grants import TopicGrantDesk
from millrace_gateway.settings import GatewaySettings

from tests.cluster.test_tenant_producers import _kafka
from tests.support.api import provision_tenant
from tests.support.infra import Infra, create_namespace, drop_namespace
from tests.support.kafka import kafka_client
from tests.support.secured_kafka import SecuredKafka

pytestmark = pytest.mark.e2e


@dataclass
class World:
    node: SecuredKafka
    infra: Infra
    namespace: str
    tenant: str
    user: str
    password: str
    options: dict[str, Any]
    topic: str

    @property
    def principal(self) -> str:
        return f"User:{self.user}"

    def settings(self) -> GatewaySettings:
        return GatewaySettings(
            kafka_bootstrap=self.node.inside, namespace=self.namespace, database_url=self.infra.database_url
        )

    def as_services(self) -> dict[str, Any]:
        return {
            "bootstrap_servers": self.node.outside,
            **self.options,
            "sasl_mechanism": "SCRAM-SHA-512",
            "sasl_plain_username": self.user,
            "sasl_plain_password": self.password,
            "request_timeout_ms": 15_000,
        }


@pytest.fixture(scope="module", name="world")
def world_fixture(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with _kafka(infra, tmp_path_factory.mktemp("secured-kafka")) as (node, options):
        local = Infra(node.inside, infra.database_url)
        namespace = f"t{uuid.uuid4().hex[:12]}"
        create_namespace(local, namespace)
        try:
            tenant = provision_tenant(local, namespace, f"acme{uuid.uuid4().hex[:6]}").tenant_id
            world = World(
                node,
                local,
                namespace,
                tenant,
                f"svc-{uuid.uuid4().hex[:6]}",
                uuid.uuid4().hex,
                options,
                f"orders-{uuid.uuid4().hex[:8]}",
            )
            asyncio.run(_prepare(world))
            yield world
        finally:
            drop_namespace(local, namespace)


async def _prepare(world: World) -> None:
    await KafkaTools(world.settings()).set_scram_password(world.user, world.password)
    admin = AIOKafkaAdminClient(bootstrap_servers=world.node.inside, **_inside_options(world))
    await admin.start()
    try:
        await admin.create_topics([NewTopic(world.topic, num_partitions=1, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=world.node.inside, **_inside_options(world))
    await producer.start()
    try:
        await producer.send_and_wait(world.topic, b'{"n": 1}', key=b"k")
    finally:
        await producer.stop()


def _inside_options(world: World) -> dict[str, Any]:
    """How the test's own setup (creating the topic, writing its first message) reaches the broker: on a
    node of the test's own, its unsecured inside listener; on the cluster tier's secured cluster, as the
    platform's own principal the session's settings name (a super user), not as the principal under test,
    which has no right to the topic until a grant gives it one."""
    if world.node.inside != world.node.outside:
        return {}
    return {k: v for k, v in kafka_client(world.node.inside).items() if k != "bootstrap_servers"}


def desk_call(world: World, act) -> Any:  # type: ignore[no-untyped-def]
    async def go() -> Any:
        engine = create_engine(world.settings())
        try:
            desk = TopicGrantDesk(
                engine,
                KafkaTools(world.settings()),
                Namespace(world.namespace),
                services_principal=world.principal,
                apply_acls=True,
            )
            return await act(desk)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def can_write(world: World) -> bool:
    async def write() -> bool:
        producer = AIOKafkaProducer(**world.as_services(), acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(world.topic, b'{"n": 2}')
            return True
        except KafkaError:
            return False
        finally:
            await producer.stop()

    return asyncio.run(write())


def can_read(world: World) -> bool:
    group = Namespace(world.namespace).group(ConsumerGroup.TRIGGER_KAFKA)

    async def read() -> bool:
        consumer = AIOKafkaConsumer(
            world.topic,
            **world.as_services(),
            group_id=group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        try:
            await consumer.start()
            polled = await consumer.getmany(timeout_ms=8000)
            return any(polled.values())
        except KafkaError:
            return False
        finally:
            await consumer.stop()

    return asyncio.run(read())


def settles(check, expected: bool, timeout: float = 20) -> bool:  # type: ignore[no-untyped-def]
    """The check's answer once ACL changes reached the broker's authorizer (within a few seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = check()
        if answer == expected or time.monotonic() > deadline:
            return answer
        time.sleep(1)


def test_the_broker_lets_the_services_do_on_a_topic_exactly_what_its_grants_allow(world: World):
    assert settles(lambda: can_write(world), False) is False
    assert settles(lambda: can_read(world), False) is False

    consume = TopicGrant(world.tenant, world.topic, TopicAccess.CONSUME)
    applied = desk_call(world, lambda desk: desk.add(consume, by="test"))
    assert applied.applied, applied.error
    assert settles(lambda: can_read(world), True) is True
    assert settles(lambda: can_write(world), False) is False

    produce = TopicGrant(world.tenant, world.topic, TopicAccess.PRODUCE)
    assert desk_call(world, lambda desk: desk.add(produce, by="test")).applied
    assert settles(lambda: can_write(world), True) is True

    revoked = desk_call(world, lambda desk: desk.revoke(produce))
    assert revoked.applied and {a.operation for a in revoked.plan.remove} == {"WRITE"}
    assert settles(lambda: can_write(world), False) is False
    assert settles(lambda: can_read(world), True) is True

    held = {a for a in asyncio.run(KafkaTools(world.settings()).acls()) if a.principal == world.principal}
    assert held == topic_acls([consume], world.principal, Namespace(world.namespace))
