"""``LiveRelay`` against real Kafka and PostgreSQL: rows handed over are published and deleted; rows
no relay holds (a dead instance's, or this instance's own that were written but never handed over)
are swept once they are older than the orphan age, and a live instance's fresh rows are left alone."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import RUNS_EVENTS, Namespace
from millrace_common.platform.live_relay import LiveRelay, delete_rows
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.settings import ServiceSettings
from sqlalchemy import create_engine, text

from tests.support.infra import Infra
from tests.support.kafka import kafka_client, partitions_of

pytestmark = pytest.mark.integration


def insert_row(infra: Infra, namespace: str, producer: str, value: bytes, age_seconds: float) -> int:
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    try:
        with engine.begin() as connection:
            return connection.execute(
                text(
                    "insert into outbox (producer, topic, key, value, created_at)"
                    " values (:producer, :topic, :key, :value, :at) returning id"
                ),
                {
                    "producer": producer,
                    "topic": Namespace(namespace).topic(RUNS_EVENTS),
                    "key": b"run-1",
                    "value": value,
                    "at": utc_now() - timedelta(seconds=age_seconds),
                },
            ).scalar_one()
    finally:
        engine.dispose()


def rows_left(infra: Infra, namespace: str) -> set[bytes]:
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    try:
        with engine.connect() as connection:
            return {bytes(v) for (v,) in connection.execute(text("select value from outbox"))}
    finally:
        engine.dispose()


async def published(infra: Infra, namespace: str, expected: int, timeout: float = 20) -> list[bytes]:
    topic = Namespace(namespace).topic(RUNS_EVENTS)
    consumer = AIOKafkaConsumer(**kafka_client(infra.kafka_bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in await partitions_of(infra.kafka_bootstrap, topic)])
        await consumer.seek_to_beginning()
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                values += [r.value for r in records]
            if len(values) >= expected:
                await asyncio.sleep(0.5)  # anything more would show up now
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    values += [r.value for r in records]
                break
        return values
    finally:
        await consumer.stop()


def test_handed_over_rows_are_published_and_orphans_swept_but_live_rows_left(
    infra: Infra, namespace: str
) -> None:
    settings = ServiceSettings(
        service_name="relay-test",
        namespace=namespace,
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=infra.database_url,
    )
    instance = uuid.uuid4().hex[:12]
    dead = insert_row(infra, namespace, "orchestrator@deadbeef0000", b"dead instance, old", 60)
    insert_row(infra, namespace, "orchestrator@livebeef0000", b"live instance, fresh", 0)
    insert_row(infra, namespace, "orchestrator", b"plain name, old", 60)
    insert_row(infra, namespace, f"orchestrator@{instance}", b"own, never handed over", 60)
    handed = insert_row(infra, namespace, f"orchestrator@{instance}", b"own, handed over", 0)
    assert dead < handed

    async def scenario() -> list[bytes]:
        connections = DirectConnections(settings)
        relay = LiveRelay(
            settings,
            connections,
            "orchestrator",
            instance=instance,
            sweep_interval_seconds=0.5,
            orphan_age_seconds=30,
        )
        task = asyncio.create_task(relay.run())
        try:
            await asyncio.sleep(1.0)  # started, swept once
            topic = Namespace(namespace).topic(RUNS_EVENTS)
            await relay.hand_over([handed], [(topic, b"run-1", b"own, handed over")])
            values = await published(infra, namespace, expected=4)
            await asyncio.sleep(0.5)  # the lazy delete
            return values
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await connections.close()

    values = asyncio.run(scenario())
    assert sorted(values) == sorted(
        [b"dead instance, old", b"plain name, old", b"own, never handed over", b"own, handed over"]
    ), "each row no relay holds, and the handed-over one, published once; the live instance's fresh row not"
    assert rows_left(infra, namespace) == {b"live instance, fresh"}


def test_deleting_acknowledged_rows_stays_cheap_when_a_burst_fills_an_outbox_that_was_empty(
    infra: Infra, namespace: str
) -> None:
    """The delete is run on one connection fifteen times while the outbox holds a few rows (as
    after a quiet spell), then a burst fills it: deleting 20,000 of 60,000 rows takes tens of
    milliseconds. Prepared and planned once on the small table, it compared every row with every id,
    several seconds of the database's CPU, past the time allowed here."""
    settings = ServiceSettings(
        service_name="relay-test",
        namespace=namespace,
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=infra.database_url,
    )
    topic = Namespace(namespace).topic(RUNS_EVENTS)

    async def scenario() -> int:
        connections = DirectConnections(settings, size=1)
        try:
            async with connections.connection() as connection:
                await connection.execute("analyze outbox")
                for _ in range(15):
                    row = await connection.execute(
                        "insert into outbox (producer, topic, key, value, created_at)"
                        " values ('relay-test', %s, null, 'x', now()) returning id",
                        (topic,),
                    )
                    (row_id,) = await row.fetchone()
                    await delete_rows(connection, [row_id, row_id + 1_000_000])
                inserted = await connection.execute(
                    "insert into outbox (producer, topic, key, value, created_at)"
                    " select 'relay-test', %s, null, 'x', now() from generate_series(1, 60000) returning id",
                    (topic,),
                )
                ids = sorted(i for (i,) in await inserted.fetchall())
                await connection.execute("set statement_timeout = '3s'")
                await delete_rows(connection, ids[::3])
                left = await connection.execute("select count(*) from outbox")
                (count,) = await left.fetchone()
                return count
        finally:
            await connections.close()

    assert asyncio.run(scenario()) == 40_000
