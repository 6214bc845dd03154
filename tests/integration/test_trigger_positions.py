"""The trigger service's consumer positions against the real PostgreSQL: a batch learns where each
partition stood before it and moves it to the batch's end in one statement (a partition's first batch
claims its row first), and a second consumer of the same partitions (a zombie after a rebalance)
waits for the first one's transaction, then sees what it handled, so nothing is handled twice."""

from __future__ import annotations

import asyncio

import pytest
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.settings import ServiceSettings
from millrace_trigger.adapters.store import TriggerStore

from tests.support.infra import Infra

pytestmark = pytest.mark.integration

TOPIC = "records.events"


def test_positions_move_per_batch_and_a_concurrent_consumer_waits_and_skips(infra: Infra, namespace: str):
    settings = ServiceSettings(service_name="positions", namespace=namespace, database_url=infra.database_url)

    async def scenario() -> dict[str, object]:
        database = DirectConnections(settings, size=2)
        store = TriggerStore("positions-test")
        seen: dict[str, object] = {}
        try:
            async with database.transaction() as connection:  # first batch: the partitions have no rows yet
                seen["first"] = await store.move_positions(connection, TOPIC, {0: 5, 1: 3})
            async with database.transaction() as connection:  # partition 2 is new, 0 and 1 move on
                seen["second"] = await store.move_positions(connection, TOPIC, {0: 9, 1: 4, 2: 1})
            async with database.transaction() as connection:  # an older batch redelivered: nothing goes back
                seen["redelivered"] = await store.move_positions(connection, TOPIC, {0: 7})
            async with database.transaction() as connection:
                seen["after"] = await store.move_positions(connection, TOPIC, {0: 9, 1: 4, 2: 1})

            # Two consumers of partition 0: the second waits for the first's transaction.
            first_moved, release = asyncio.Event(), asyncio.Event()

            async def first() -> dict[int, int]:
                async with database.transaction() as connection:
                    before = await store.move_positions(connection, TOPIC, {0: 20})
                    first_moved.set()
                    await release.wait()
                return before

            async def second() -> dict[int, int]:
                await first_moved.wait()
                async with database.transaction() as connection:
                    return await store.move_positions(connection, TOPIC, {0: 15})

            one = asyncio.create_task(first())
            two = asyncio.create_task(second())
            await first_moved.wait()
            await asyncio.sleep(0.5)
            seen["second_waited"] = not two.done()
            release.set()
            seen["concurrent"] = (await one, await two)
            async with database.transaction() as connection:
                seen["final"] = await store.move_positions(connection, TOPIC, {0: 20})
        finally:
            await database.close()
        return seen

    seen = asyncio.run(scenario())
    assert seen["first"] == {0: 0, 1: 0}
    assert seen["second"] == {0: 5, 1: 3, 2: 0}
    assert seen["redelivered"] == {0: 9}
    assert seen["after"] == {0: 9, 1: 4, 2: 1}
    assert seen["second_waited"] is True, "the second consumer did not wait for the first's lock"
    assert seen["concurrent"] == ({0: 9}, {0: 20}), "the second consumer saw what the first handled"
    assert seen["final"] == {0: 20}
