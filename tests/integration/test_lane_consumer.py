"""``LaneConsumer`` against a real broker: an outage in the handler is waited out (the message is
handled again, never dead-lettered), and a message the handler acknowledges is committed."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaProducer
from millrace_common.contracts.topics import NODES_READY_HTTP, ConsumerGroup, Namespace
from millrace_common.platform.consuming import Decoder, Delivery
from millrace_common.platform.lanes import LaneConsumer
from millrace_common.platform.metrics import ConsumerMetrics
from millrace_common.platform.settings import ServiceSettings
from prometheus_client import CollectorRegistry
from pydantic import TypeAdapter

from tests.support.infra import Infra
from tests.support.kafka import group_lag, kafka_client

pytestmark = pytest.mark.integration


def test_an_outage_in_the_handler_is_waited_out_and_nothing_is_dead_lettered(infra: Infra, namespace: str):
    names = Namespace(namespace)
    settings = ServiceSettings(
        service_name="lane-test",
        namespace=namespace,
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=infra.database_url,
    )

    async def scenario() -> tuple[list[str], float]:
        producer = AIOKafkaProducer(**kafka_client(infra.kafka_bootstrap), acks="all")
        await producer.start()
        try:
            for n in range(3):
                await producer.send_and_wait(names.topic(NODES_READY_HTTP), f'"m{n}"'.encode(), key=b"k")
        finally:
            await producer.stop()
        handled: list[str] = []
        outages = {"left": 2}

        async def handle(deliveries: list[Delivery]) -> None:
            for delivery in deliveries:
                if delivery.message == "m1" and outages["left"]:
                    outages["left"] -= 1
                    raise ConnectionRefusedError("PostgreSQL is away")
                handled.append(delivery.message)
                delivery.ack()

        metrics = ConsumerMetrics(CollectorRegistry())
        consumer = LaneConsumer(
            settings,
            ConsumerGroup.NODE_RUNNER,
            Decoder(names, {NODES_READY_HTTP: TypeAdapter(str)}),
            {NODES_READY_HTTP: 2},
            handle,
            metrics,
        )
        task = asyncio.create_task(consumer.run())
        deadline = time.monotonic() + 60
        try:
            while len(handled) < 3:
                assert not task.done(), task.exception()
                assert time.monotonic() < deadline, f"handled {handled}"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        refused = metrics.handled.labels(
            topic=NODES_READY_HTTP.name, group=ConsumerGroup.NODE_RUNNER.value, outcome="dead_lettered"
        )._value.get()
        return handled, refused

    handled, refused = asyncio.run(scenario())
    assert sorted(handled) == ["m0", "m1", "m2"]
    assert refused == 0, "an outage is waited out, never dead-lettered"
    group = names.group(ConsumerGroup.NODE_RUNNER)
    assert group_lag(infra.kafka_bootstrap, group, names.topic(NODES_READY_HTTP)) == 0
