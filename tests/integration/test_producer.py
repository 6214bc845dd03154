"""The process's Kafka producer against the real broker: what it publishes arrives as given (value,
key, headers, nothing added), a message's key picks its partition as every other client of ours does,
``no_confirm`` hands back the acknowledgement to await, and readiness follows whether it runs."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiokafka import AIOKafkaConsumer
from millrace_common.contracts.topics import RUNS_COMMANDS, Namespace
from millrace_common.platform import producer as producing
from millrace_common.platform.kafka import key_partitioner
from millrace_common.platform.outages import unreachable_dependency
from millrace_common.platform.producer import Producer, ProducerNotStarted

from tests.support.infra import Infra
from tests.support.kafka import kafka_client, partitions_of

pytestmark = pytest.mark.integration


async def _read(infra: Infra, topic: str, expected: int) -> list:
    consumer = AIOKafkaConsumer(
        topic, **kafka_client(infra.kafka_bootstrap), auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    try:
        found: list = []
        # Waits for ``expected`` messages; when none are expected, reads for two seconds to see none come.
        deadline = asyncio.get_running_loop().time() + (30 if expected else 2)
        while asyncio.get_running_loop().time() < deadline and not (expected and len(found) >= expected):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                found.extend(records)
        return sorted(found, key=lambda r: r.value)
    finally:
        await consumer.stop()


def test_messages_arrive_as_published_with_their_key_partition_and_no_headers_added(
    infra: Infra, namespace: str
):
    topic = Namespace(namespace).topic(RUNS_COMMANDS)

    async def scenario() -> tuple[list, list[int], bool, bool]:
        producer = Producer(infra.settings(namespace))
        assert not await producer.ping(timeout=2.0), "a producer that is not started is not ready"
        await producer.start()
        try:
            ready = await producer.ping(timeout=5.0)
            acked = await producer.publish(b"a-confirmed", topic=topic, key=b"run-1")
            future = await producer.publish(
                b"b-handed-over",
                topic=topic,
                key=b"run-2",
                headers={"millrace-reason": "why"},
                no_confirm=True,
            )
            assert isinstance(future, asyncio.Future)
            later = await future
            assert (acked.topic, later.topic) == (topic, topic)
        finally:
            await producer.stop()
        stopped_ready = await producer.ping(timeout=1.0)
        return (
            await _read(infra, topic, 2),
            await partitions_of(infra.kafka_bootstrap, topic),
            ready,
            stopped_ready,
        )

    records, partitions, ready, stopped_ready = asyncio.run(scenario())
    assert ready and not stopped_ready
    assert [(r.value, r.key) for r in records] == [(b"a-confirmed", b"run-1"), (b"b-handed-over", b"run-2")]
    assert [list(r.headers) for r in records] == [[], [("millrace-reason", b"why")]]
    for record in records:
        assert record.partition == key_partitioner(record.key, partitions, partitions)


def test_publishing_before_start_is_an_outage_to_wait_out_not_a_refusal(infra: Infra, namespace: str):
    topic = Namespace(namespace).topic(RUNS_COMMANDS)

    async def scenario() -> ProducerNotStarted:
        producer = Producer(infra.settings(namespace))
        with pytest.raises(ProducerNotStarted, match=topic) as refused:
            await producer.publish(b"early", topic=topic)
        return refused.value

    # An outbox relay or a consumer waits and sends again; it does not dead-letter the message.
    assert unreachable_dependency(asyncio.run(scenario())) == "Kafka"
    assert asyncio.run(_read(infra, topic, 0)) == []


def test_readiness_and_stop_are_bounded_when_the_broker_does_not_answer(
    infra: Infra, namespace: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(producing, "STOP_SECONDS", 0.5)

    async def scenario() -> tuple[bool, float, float]:
        producer = Producer(infra.settings(namespace))
        await producer.start()
        client = producer._producer  # the real aiokafka producer, made to hang as a lost broker does
        assert client is not None
        never: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        client.client.force_metadata_update = lambda: never  # type: ignore[method-assign]
        began = time.monotonic()
        ready = await producer.ping(timeout=0.5)
        pinged = time.monotonic() - began
        real_stop = client.stop

        async def hanging_stop() -> None:
            await asyncio.sleep(30)

        client.stop = hanging_stop  # type: ignore[method-assign]
        began = time.monotonic()
        await producer.stop()
        stopped = time.monotonic() - began
        await real_stop()
        return ready, pinged, stopped

    ready, pinged, stopped = asyncio.run(scenario())
    assert not ready and pinged < 2, f"readiness answered {ready} after {pinged:.1f} s"
    assert stopped < 2, f"the stop took {stopped:.1f} s"
