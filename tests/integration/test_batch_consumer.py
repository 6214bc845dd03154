"""``BatchConsumer`` against a real broker: every record reaches the handler decoded and in partition
order, a batch whose handler raised comes again (with what was polled past it), so do the messages a
handler did not acknowledge, and what was acknowledged is committed, so a new member of the group
starts after it."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

import pytest
from aiokafka import AIOKafkaProducer, ConsumerRecord
from millrace_common.contracts.topics import NODES_RESULTS, RUNS_COMMANDS, ConsumerGroup, Namespace
from millrace_common.platform.consuming import BatchConsumer, Decoder, Delivery
from millrace_common.platform.gathering import Gathering
from millrace_common.platform.settings import ServiceSettings
from pydantic import TypeAdapter

from tests.support.infra import Infra
from tests.support.kafka import kafka_client

pytestmark = pytest.mark.integration

KEYS = [f"run-{n}" for n in range(8)]
TEXT = TypeAdapter(str)


def decoder(namespace: str) -> Decoder:
    """Both topics carry JSON strings here (``"run-3:17"``)."""
    return Decoder(Namespace(namespace), {RUNS_COMMANDS: TEXT, NODES_RESULTS: TEXT})


def records_of(deliveries: list[Delivery]) -> list[ConsumerRecord]:
    return [d.record for d in deliveries]


def settings(infra: Infra, namespace: str) -> ServiceSettings:
    return ServiceSettings(
        service_name="consumer-test",
        namespace=namespace,
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=infra.database_url,
        kafka_max_poll_records=20,
    )


async def produce(infra: Infra, namespace: str, count: int, start: int = 0) -> None:
    """``count`` records spread over both topics and eight keys; a value is the key's running number."""
    producer = AIOKafkaProducer(**kafka_client(infra.kafka_bootstrap), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        names = [Namespace(namespace).topic(RUNS_COMMANDS), Namespace(namespace).topic(NODES_RESULTS)]
        sends = []
        for n in range(start, start + count):
            key = KEYS[n % len(KEYS)]
            sends.append(await producer.send(names[n % 2], f'"{key}:{n}"'.encode(), key=key.encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()


async def consume_until(
    consumer: BatchConsumer, seen: list[ConsumerRecord], count: int, timeout: float = 60
) -> None:
    task = asyncio.create_task(consumer.run())
    deadline = time.monotonic() + timeout
    try:
        while len({(r.topic, r.partition, r.offset) for r in seen}) < count:
            if task.done():
                task.result()
            assert time.monotonic() < deadline, f"{len(seen)} records of {count} in {timeout} s"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # let the committer commit what was handled
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def produced_then_read_by_a_new_member(
    infra: Infra, namespace: str, count: int, *, start: int
) -> list[int]:
    """Produce ``count`` more records, then read with a new member of the group until that many
    arrived: the running numbers it got (only what comes after the group's committed offsets)."""
    await produce(infra, namespace, count, start=start)
    later: list[ConsumerRecord] = []

    async def handle(deliveries: list[Delivery]) -> None:
        later.extend(records_of(deliveries))
        for delivery in deliveries:
            delivery.ack()

    member = BatchConsumer(settings(infra, namespace), ConsumerGroup.ORCHESTRATOR, decoder(namespace), handle)
    await consume_until(member, later, count)
    return sorted(int(r.value.decode().strip('"').split(":")[1]) for r in later)


def in_partition_order(seen: list[ConsumerRecord]) -> bool:
    last: dict[tuple[str, int], int] = {}
    for record in seen:
        where = (record.topic, record.partition)
        if record.offset <= last.get(where, -1):
            return False
        last[where] = record.offset
    return True


def test_a_failed_batch_comes_again_and_nothing_is_lost_or_reordered(infra: Infra, namespace: str) -> None:
    async def scenario() -> None:
        await produce(infra, namespace, 200)
        handled: list[ConsumerRecord] = []
        attempts: defaultdict[tuple[str, int, int], int] = defaultdict(int)
        failures = {"left": 3}

        async def handle(deliveries: list[Delivery]) -> None:
            for record in records_of(deliveries):
                attempts[(record.topic, record.partition, record.offset)] += 1
            if failures["left"] and len(handled) >= 40:
                failures["left"] -= 1
                raise RuntimeError("the handler failed")  # nothing of this batch counts as handled
            handled.extend(records_of(deliveries))
            for delivery in deliveries:
                delivery.ack()

        consumer = BatchConsumer(
            settings(infra, namespace),
            ConsumerGroup.ORCHESTRATOR,
            decoder(namespace),
            handle,
            retry_seconds=0.1,
        )
        await consume_until(consumer, handled, 200)
        assert failures["left"] == 0, "the handler was made to fail three times"
        keys = {(r.topic, r.partition, r.offset) for r in handled}
        assert len(keys) == 200 == len(handled), "every record handled once after its batch failed"
        assert in_partition_order(handled)
        assert max(attempts.values()) >= 2, "the failed batches were polled again"

        # A new member of the group starts after what was handled and committed.
        values = await produced_then_read_by_a_new_member(infra, namespace, 30, start=200)
        assert values == list(range(200, 230)), "only the records produced after the commit come again"

    asyncio.run(scenario())


def test_records_polled_while_a_batch_is_handled_wait_for_the_next_batch(
    infra: Infra, namespace: str
) -> None:
    """The poller keeps fetching during a slow batch; what it buffered becomes the next batch(es),
    never more than about ``max_poll_records`` at a time, still in partition order."""

    async def scenario() -> None:
        await produce(infra, namespace, 10)
        handled: list[ConsumerRecord] = []
        sizes: list[int] = []
        produced_more = {"done": False}

        async def handle(deliveries: list[Delivery]) -> None:
            sizes.append(len(deliveries))
            handled.extend(records_of(deliveries))
            for delivery in deliveries:
                delivery.ack()
            if not produced_more["done"]:
                produced_more["done"] = True
                await produce(infra, namespace, 90, start=10)
                await asyncio.sleep(1.0)  # a slow batch: the poller fetches the 90 meanwhile

        consumer = BatchConsumer(
            settings(infra, namespace), ConsumerGroup.ORCHESTRATOR, decoder(namespace), handle
        )
        await consume_until(consumer, handled, 100)
        assert len(handled) == 100
        assert in_partition_order(handled)
        assert max(sizes[1:]) <= 40, f"batches after the slow one stay near max_poll_records: {sizes}"

    asyncio.run(scenario())


def test_a_busy_consumer_gathers_small_batches_and_an_idle_one_handles_at_once(
    infra: Infra, namespace: str
) -> None:
    """With a ``Gathering``, a record reaching an idle consumer is handled at once; once the consumer
    is busy all the time, records that arrive while a small batch waits join it, and the wait ends
    when the batch reaches the bound, long before the longest wait."""

    async def scenario() -> None:
        handled: list[ConsumerRecord] = []
        batches: list[tuple[float, int]] = []  # when each batch was handed over, and its size

        async def handle(deliveries: list[Delivery]) -> None:
            batches.append((time.monotonic(), len(deliveries)))
            handled.extend(records_of(deliveries))
            for delivery in deliveries:
                delivery.ack()
            await asyncio.sleep(0.1)  # each batch takes 100 ms: a record every 20 ms keeps it busy

        consumer = BatchConsumer(
            settings(infra, namespace),
            ConsumerGroup.ORCHESTRATOR,
            decoder(namespace),
            handle,
            gathering=Gathering(wait_seconds=2.0, below_records=16),
        )
        producer = AIOKafkaProducer(
            **kafka_client(infra.kafka_bootstrap), acks="all", enable_idempotence=True
        )
        topic = Namespace(namespace).topic(RUNS_COMMANDS)
        await producer.start()
        task = asyncio.create_task(consumer.run())
        try:
            deadline = time.monotonic() + 60
            while not consumer.membership.held:
                assert time.monotonic() < deadline, "the consumer was never assigned its partitions"
                await asyncio.sleep(0.05)
            await producer.send_and_wait(topic, b'"run-0:0"', key=b"run-0")
            sent = time.monotonic()
            while not handled:
                assert time.monotonic() < deadline, "the first record was never handled"
                await asyncio.sleep(0.01)
            assert [size for _, size in batches] == [1]
            assert batches[0][0] - sent < 1.0, "an idle consumer does not wait for more"

            for n in range(1, 201):
                await producer.send_and_wait(topic, f'"run-0:{n}"'.encode(), key=b"run-0")
                await asyncio.sleep(0.02)
            while len(handled) < 201:
                assert time.monotonic() < deadline, f"{len(handled)} of 201 records handled"
                if task.done():
                    task.result()
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await producer.stop()
        sizes = [size for _, size in batches]
        assert [int(r.value.decode().strip('"').split(":")[1]) for r in handled] == list(range(201))
        gathered = [i for i, size in enumerate(sizes) if size >= 16]
        assert len(gathered) >= 3, f"batches of a busy consumer reach the bound: {sizes}"
        gaps = [batches[i][0] - batches[i - 1][0] for i in gathered if i > 0 and i - 1 in gathered]
        assert gaps and max(gaps) < 1.5, f"a full batch still waited 2 s: {gaps}"

    asyncio.run(scenario())


def test_messages_a_handler_did_not_acknowledge_come_again_and_are_not_committed(
    infra: Infra, namespace: str
) -> None:
    """A handler that returns without acknowledging a message (explicit acknowledgement) gets it, and
    what followed it on its partition, again; everything is acknowledged once in the end."""

    async def scenario() -> None:
        await produce(infra, namespace, 60)
        acked: list[ConsumerRecord] = []
        skipped: set[tuple[str, int, int]] = set()

        async def handle(deliveries: list[Delivery]) -> None:
            for delivery in deliveries:
                where = (delivery.record.topic, delivery.record.partition, delivery.offset)
                if delivery.message.endswith(":7") and where not in skipped:
                    skipped.add(where)  # the first time, message 7 is left unacknowledged
                    continue
                delivery.ack()
                acked.append(delivery.record)

        consumer = BatchConsumer(
            settings(infra, namespace),
            ConsumerGroup.ORCHESTRATOR,
            decoder(namespace),
            handle,
            retry_seconds=0.1,
        )
        await consume_until(consumer, acked, 60)
        assert skipped, "message 7 was left unacknowledged once"
        assert len({(r.topic, r.partition, r.offset) for r in acked}) == 60
        seven = [r for r in acked if r.value.decode().endswith(':7"')]
        assert len(seven) == 1, "message 7 was acknowledged once, when it came again"

        values = await produced_then_read_by_a_new_member(infra, namespace, 5, start=60)
        assert values == list(range(60, 65)), "what was acknowledged was committed"

    asyncio.run(scenario())


def test_a_record_that_did_not_decode_is_refused_once_while_its_batch_is_tried_again(
    infra: Infra, namespace: str
) -> None:
    """An outage fails the handler twice; the batch comes again from its first message not
    acknowledged, and the undecodable record before it is not refused again each time."""

    async def scenario() -> None:
        names = Namespace(namespace)
        producer = AIOKafkaProducer(**kafka_client(infra.kafka_bootstrap), acks="all")
        await producer.start()
        try:
            key = b"run-0"  # one key, one partition: the bad record comes before the good ones
            await producer.send_and_wait(names.topic(RUNS_COMMANDS), b"{not json", key=key)
            for n in range(5):
                await producer.send_and_wait(names.topic(RUNS_COMMANDS), f'"run-0:{n}"'.encode(), key=key)
        finally:
            await producer.stop()
        refused: list[int] = []
        handled: list[ConsumerRecord] = []
        outages = {"left": 2}

        async def handle(deliveries: list[Delivery]) -> None:
            if outages["left"]:
                outages["left"] -= 1
                raise ConnectionRefusedError("PostgreSQL is away")
            handled.extend(records_of(deliveries))
            for delivery in deliveries:
                delivery.ack()

        decoder = Decoder(
            names,
            {RUNS_COMMANDS: TEXT, NODES_RESULTS: TEXT},
            unreadable=lambda r, _: refused.append(r.offset),
        )
        consumer = BatchConsumer(
            settings(infra, namespace), ConsumerGroup.ORCHESTRATOR, decoder, handle, retry_seconds=0.1
        )
        await consume_until(consumer, handled, 5)
        assert outages["left"] == 0, "the handler failed twice"
        assert len(refused) == 1, f"the undecodable record was refused {len(refused)} times"
        assert sorted(int(r.value.decode().strip('"').split(":")[1]) for r in handled) == list(range(5))

    asyncio.run(scenario())
