"""Two instances of one service relay the same producer's outbox (two gateways, two approval services):
one key's messages reach Kafka in the order they were written, even when the instance that took the
older row is slow to send it, or dies holding it. Against real Kafka and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from millrace_common.platform.db import create_engine
from millrace_common.platform.outbox import OutboxRelay
from millrace_common.platform.producer import Producer
from millrace_common.platform.settings import ServiceSettings

from tests.integration.test_live_relay import insert_row, published, rows_left
from tests.support.infra import Infra

pytestmark = pytest.mark.integration


class PausedProducer:
    """A real producer in a process that stalls (a long GC pause, a starved CPU) just as it is about to
    send: ``entered`` is set when the first send is asked for, which then waits for ``resume``."""

    def __init__(self, producer: Any) -> None:
        self._producer = producer
        self.entered = asyncio.Event()
        self.resume = asyncio.Event()

    async def publish(self, value: bytes, **kwargs: Any) -> Any:
        self.entered.set()
        await self.resume.wait()
        return await self._producer.publish(value, **kwargs)


def relay_settings(infra: Infra, namespace: str) -> ServiceSettings:
    return ServiceSettings(
        service_name="outbox-instances",
        namespace=namespace,
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=infra.database_url,
    )


def test_a_slow_instance_holding_a_keys_older_row_keeps_the_keys_order(infra: Infra, namespace: str):
    settings = relay_settings(infra, namespace)
    insert_row(infra, namespace, "gateway", b"record.created", age_seconds=0)

    async def scenario() -> list[bytes]:
        engine_a, engine_b = create_engine(settings), create_engine(settings)
        producer_a, producer_b = Producer(settings), Producer(settings)
        await producer_a.start()
        await producer_b.start()
        slow = PausedProducer(producer_a)
        relay_a = OutboxRelay(engine_a, slow, "gateway")  # type: ignore[arg-type]
        relay_b = OutboxRelay(engine_b, producer_b, "gateway")
        try:
            pass_a = asyncio.create_task(relay_a.publish_pending())
            await asyncio.wait_for(slow.entered.wait(), 10)  # instance A has taken the older row
            # Meanwhile the record is changed through instance B, which relays its row at once.
            await asyncio.to_thread(insert_row, infra, namespace, "gateway", b"record.updated", 0)
            pass_b = asyncio.create_task(relay_b.publish_pending())
            await asyncio.sleep(1.5)
            slow.resume.set()
            await asyncio.wait_for(asyncio.gather(pass_a, pass_b), 30)
            await relay_b.publish_pending()  # whatever B left to A's pass, or waited for
            return await published(infra, namespace, expected=2)
        finally:
            slow.resume.set()
            await producer_a.stop()
            await producer_b.stop()
            await engine_a.dispose()
            await engine_b.dispose()

    values = asyncio.run(scenario())
    assert values == [b"record.created", b"record.updated"], f"one key's messages out of order: {values}"
    assert rows_left(infra, namespace) == set()


def test_an_instance_that_dies_holding_rows_leaves_them_to_the_other_in_order(infra: Infra, namespace: str):
    settings = relay_settings(infra, namespace)
    insert_row(infra, namespace, "gateway", b"first", age_seconds=0)

    async def scenario() -> list[bytes]:
        engine_a, engine_b = create_engine(settings), create_engine(settings)
        producer_b = Producer(settings)
        await producer_b.start()
        dying = PausedProducer(None)  # never sends: the process dies before it does
        relay_a = OutboxRelay(engine_a, dying, "gateway")  # type: ignore[arg-type]
        relay_b = OutboxRelay(engine_b, producer_b, "gateway")
        try:
            pass_a = asyncio.create_task(relay_a.publish_pending())
            await asyncio.wait_for(dying.entered.wait(), 10)
            await asyncio.to_thread(insert_row, infra, namespace, "gateway", b"second", 0)
            pass_b = asyncio.create_task(relay_b.publish_pending())
            await asyncio.sleep(1.0)
            # Instance A dies: its connection closes, its transaction rolls back, its rows are free.
            pass_a.cancel()
            await asyncio.gather(pass_a, return_exceptions=True)
            await engine_a.dispose()
            await asyncio.wait_for(pass_b, 30)
            await relay_b.publish_pending()
            return await published(infra, namespace, expected=2)
        finally:
            await producer_b.stop()
            await engine_a.dispose()
            await engine_b.dispose()

    values = asyncio.run(scenario())
    assert values == [b"first", b"second"], f"one key's messages out of order: {values}"
    assert rows_left(infra, namespace) == set()
