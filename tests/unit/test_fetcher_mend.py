"""aiokafka's fetch routine, run for real over a stand-in broker (what a pass would fetch is stubbed:
one broker, fetched unless marked in flight): a fetch that ends in the same event-loop turn as the
application takes records leaves the routine with no fetch out until its timeout; mended
(``millrace_common.platform.fetcher_mend``), the next fetch goes at once and never a second one
beside it."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import Fetcher, OffsetResetStrategy
from aiokafka.errors import NotLeaderForPartitionError
from millrace_common.platform import fetcher_mend

pytestmark = pytest.mark.unit

NODE = 1
ROUTINE_TIMEOUT_SECONDS = 3600.0  # never reached: only a wake-up can start the next fetch
TURNS = 50  # event-loop turns given to the routine after each step (it needs a handful)


class Broker:
    """Stands in for the fetcher's fetches: each is counted and ends when the test releases it."""

    def __init__(self) -> None:
        self.fetches = 0
        self.out = 0
        self.most_out = 0
        self.gates: list[asyncio.Event] = []

    async def fetch(self, assignment: object, node_id: int, request: object) -> bool:
        gate = asyncio.Event()
        self.gates.append(gate)
        self.fetches += 1
        self.out += 1
        self.most_out = max(self.most_out, self.out)
        try:
            await gate.wait()
        finally:
            self.out -= 1
        return False  # no new records


def a_fetcher(broker: Broker) -> Fetcher:
    """A real Fetcher whose routine runs, with one assigned broker and its fetches ``broker``'s."""
    loop = asyncio.get_running_loop()
    assignment = SimpleNamespace(active=True, unassign_future=loop.create_future(), tps=[])
    subscriptions = SimpleNamespace(
        subscription=SimpleNamespace(assignment=assignment), register_fetch_waiters=lambda waiters: None
    )
    client = SimpleNamespace(_loop=loop, _metadata_max_age_ms=300_000)
    fetcher = Fetcher(client, subscriptions, fetcher_timeout=ROUTINE_TIMEOUT_SECONDS)

    def actions(_assignment: object) -> tuple:
        # What a pass would send: a fetch to the broker, unless one to it is marked in flight.
        requests = [] if NODE in fetcher._in_flight else [(NODE, "fetch")]
        return requests, {}, ROUTINE_TIMEOUT_SECONDS, False, []

    fetcher._get_actions_per_node = actions
    fetcher._proc_fetch_request = broker.fetch
    return fetcher


async def turns() -> None:
    for _ in range(TURNS):
        await asyncio.sleep(0)


def records_taken(fetcher: Fetcher) -> None:
    """What aiokafka does when the application takes records: wake the routine."""
    fetcher._notify(fetcher._wait_consume_future)


async def into_the_race(broker: Broker, fetcher: Fetcher, *, mended: bool) -> None:
    if mended:
        assert fetcher_mend.mend(SimpleNamespace(_fetcher=fetcher))
    await turns()
    assert broker.fetches == 1
    # The application takes records (the routine is woken first), and in the same turn the fetch
    # in flight ends.
    records_taken(fetcher)
    broker.gates[0].set()
    await turns()


@asynccontextmanager
async def running() -> AsyncIterator[tuple[Broker, Fetcher]]:
    """A fetcher over a stand-in broker, its routine running; stopped on the way out, whatever failed."""
    broker = Broker()
    fetcher = a_fetcher(broker)
    try:
        yield broker, fetcher
    finally:
        fetcher._fetch_task.cancel()
        await asyncio.gather(fetcher._fetch_task, return_exceptions=True)
        for task in list(fetcher._pending_tasks):
            task.cancel()
        await asyncio.gather(*fetcher._pending_tasks, return_exceptions=True)


async def test_unmended_the_routine_sends_no_fetch_until_its_timeout():
    # The race as aiokafka has it: if this starts failing, a release fixed it and the mend can go.
    async with running() as (broker, fetcher):
        await into_the_race(broker, fetcher, mended=False)
        assert broker.fetches == 1
        assert NODE not in fetcher._in_flight  # the mark is cleared by now, but no pass looked again
        assert not fetcher._pending_tasks  # and nothing is out that would wake one


async def test_mended_the_next_fetch_goes_at_once_and_alone():
    async with running() as (broker, fetcher):
        await into_the_race(broker, fetcher, mended=True)
        assert broker.fetches == 2
        assert NODE in fetcher._in_flight  # the second fetch is marked: aiokafka's mark, kept
        records_taken(fetcher)  # another wake-up while it is out starts nothing beside it
        await turns()
        assert broker.fetches == 2
        broker.gates[1].set()  # it ends on its own: the next goes, as aiokafka would send it
        await turns()
        assert broker.fetches == 3
        assert broker.most_out == 1


async def test_a_second_mend_changes_nothing():
    async with running() as (_broker, fetcher):
        consumer = SimpleNamespace(_fetcher=fetcher)
        assert fetcher_mend.mend(consumer)
        mended = fetcher._proc_fetch_request
        assert fetcher_mend.mend(consumer)
        assert fetcher._proc_fetch_request is mended


async def test_a_consumer_without_a_fetcher_is_left_alone():
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    try:
        assert fetcher_mend.mend(consumer) is False
    finally:
        await consumer.stop()


def test_aiokafka_still_marks_runs_and_wakes_as_the_mend_relies_on():
    routine = inspect.getsource(Fetcher._fetch_requests_routine)
    assert f"self.{fetcher_mend.IN_FLIGHT_ATTRIBUTE}.add(node_id)" in routine
    assert "task.add_done_callback(on_done)" in routine  # the mark's clearing, registered first
    assert f"self.{fetcher_mend.WAKE_ATTRIBUTE} = create_future()" in routine  # anew each pass
    assert f"other_futs = [self.{fetcher_mend.WAKE_ATTRIBUTE}" in routine  # and waited on
    for name in fetcher_mend.MARKED_TASKS:
        assert f"self.{name}(assignment, node_id," in routine


class StaleLeader:
    """A partition awaiting an offset reset whose leader, as the metadata has it, is not the leader."""

    def __init__(self, fetcher: Fetcher) -> None:
        self.refreshes = 0
        self.asked = 0
        self.partition = TopicPartition("runs.commands", 0)
        state = SimpleNamespace(
            has_valid_position=False, awaiting_reset=True, reset_strategy=OffsetResetStrategy.EARLIEST
        )
        self.assignment = SimpleNamespace(state_value=lambda tp: state)
        fetcher._client.force_metadata_update = self.refresh
        fetcher._retry_backoff = 0.0

        async def offsets(node_id: int, topic_data: object) -> dict:
            self.asked += 1
            raise NotLeaderForPartitionError()

        fetcher._proc_offset_request = offsets

    def refresh(self) -> None:
        self.refreshes += 1


@pytest.mark.parametrize("mended", [False, True])
async def test_a_reset_asked_of_a_broker_no_longer_the_leader_refreshes_the_metadata_when_mended(mended):
    # aiokafka's own reset (its routine's task) logs the error and asks the same broker again; if the
    # unmended case starts refreshing, a release fixed it and this part of the mend can go.
    async with running() as (_broker, fetcher):
        stale = StaleLeader(fetcher)
        if mended:
            assert fetcher_mend.mend(SimpleNamespace(_fetcher=fetcher))
        await fetcher._update_fetch_positions(stale.assignment, NODE, [stale.partition])
        assert stale.asked == 1
        assert stale.refreshes == (1 if mended else 0)
