"""aiokafka's fetch routine, run for real over a fake broker: a fetch that ends in the same event-loop
turn as the application consumes records leaves the routine with no fetch in flight for its whole
timeout, and the mend (``millrace_common.platform.fetcher_mend``) has it send the next fetch at once."""

from __future__ import annotations

import asyncio
import inspect
from types import SimpleNamespace

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from millrace_common.platform import fetcher_mend

pytestmark = pytest.mark.unit

NODE = 1
ROUTINE_TIMEOUT_SECONDS = 1.0


class Broker:
    """Stands in for the fetcher's fetches: each one is recorded and ends when the test lets it."""

    def __init__(self) -> None:
        self.fetches = 0
        self.started = asyncio.Event()
        self.gate = asyncio.Event()

    async def fetch(self, assignment: object, node_id: int, request: object) -> bool:
        self.fetches += 1
        self.started.set()
        await self.gate.wait()
        return False  # no new records


def a_fetcher(broker: Broker) -> Fetcher:
    """A real Fetcher whose routine runs, with one assigned broker and the fetch replaced by ``broker``."""
    assignment = SimpleNamespace(
        active=True, unassign_future=asyncio.get_running_loop().create_future(), tps=[]
    )
    subscriptions = SimpleNamespace(
        subscription=SimpleNamespace(assignment=assignment), register_fetch_waiters=lambda waiters: None
    )
    client = SimpleNamespace(_loop=asyncio.get_running_loop(), _metadata_max_age_ms=300_000)
    fetcher = Fetcher(client, subscriptions, fetcher_timeout=ROUTINE_TIMEOUT_SECONDS)

    def actions(_assignment: object) -> tuple:
        # What the routine would send: a fetch to the broker, unless one to it is in flight.
        requests = [] if NODE in fetcher._in_flight else [(NODE, "fetch")]
        return requests, {}, ROUTINE_TIMEOUT_SECONDS, False, []

    fetcher._get_actions_per_node = actions
    fetcher._proc_fetch_request = broker.fetch
    return fetcher


async def fetches_after_the_race(mended: bool) -> int:
    """How many fetches the routine started within a fifth of its timeout of the race."""
    broker = Broker()
    fetcher = a_fetcher(broker)
    if mended:
        assert fetcher_mend.mend(SimpleNamespace(_fetcher=fetcher))
    try:
        await asyncio.wait_for(broker.started.wait(), 1)
        assert broker.fetches == 1
        # The application consumes records (the routine is woken first), and in the same turn the
        # fetch in flight ends.
        fetcher._notify(fetcher._wait_consume_future)
        broker.gate.set()
        await asyncio.sleep(ROUTINE_TIMEOUT_SECONDS / 5)
        return broker.fetches
    finally:
        fetcher._fetch_task.cancel()
        await asyncio.gather(fetcher._fetch_task, return_exceptions=True)


async def test_unmended_the_routine_sends_no_fetch_until_its_timeout():
    # The race as aiokafka has it: if this starts failing, a release fixed it and the mend can go.
    assert await fetches_after_the_race(mended=False) == 1


async def test_mended_the_next_fetch_goes_at_once():
    assert await fetches_after_the_race(mended=True) >= 2


async def test_a_finished_fetch_is_no_longer_in_flight_when_its_task_completes():
    broker = Broker()
    broker.gate.set()
    fetcher = SimpleNamespace(
        _in_flight={NODE}, _proc_fetch_request=broker.fetch, _update_fetch_positions=broker.fetch
    )
    assert fetcher_mend.mend(SimpleNamespace(_fetcher=fetcher))
    assert fetcher_mend.mend(SimpleNamespace(_fetcher=fetcher))  # a second mend changes nothing
    seen: list[bool] = []
    task = asyncio.create_task(fetcher._proc_fetch_request(None, NODE, "fetch"))
    task.add_done_callback(lambda _task: seen.append(NODE in fetcher._in_flight))
    await task
    assert seen == [False]
    assert broker.fetches == 1


async def test_a_consumer_without_a_fetcher_is_left_alone():
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    try:
        assert fetcher_mend.mend(consumer) is False
    finally:
        await consumer.stop()


def test_aiokafka_still_marks_and_runs_what_the_mend_relies_on():
    routine = inspect.getsource(Fetcher._fetch_requests_routine)
    assert f"self.{fetcher_mend.IN_FLIGHT_ATTRIBUTE}.add(node_id)" in routine
    for name in fetcher_mend.MARKED_TASKS:
        assert f"self.{name}(assignment, node_id," in routine
        assert list(inspect.signature(getattr(Fetcher, name)).parameters)[:3] == [
            "self",
            "assignment",
            "node_id",
        ]
