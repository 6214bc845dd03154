"""The fetch wait: a fetch that holds every partition its consumer reads from the broker waits long,
one that leaves a partition out (records still buffered, paused, a position being reset) waits
short, as aiokafka's own fetcher builds them; the quiet tracker behind the polls' waits; and aiokafka
still has what the wait is set through."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Self

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import Assignment
from aiokafka.protocol.fetch import FetchRequest, FetchRequest_v4
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform import fetch_wait
from millrace_common.platform.fetch_wait import (
    FETCHER_TIMEOUT_MS,
    REQUEST_WAIT_ATTRIBUTE,
    Quiet,
    fetch_wait_ms,
    install,
)

pytestmark = pytest.mark.unit

SHORT, LONG = 20, 2000
TOPIC = "runs.commands"


def test_quiet_after_a_second_without_records_and_not_after_records():
    quiet = Quiet(after_seconds=1.0)
    assert quiet.observe(False, 0.0) is False  # just started: not quiet until a second has passed
    assert quiet.observe(False, 0.9) is False
    assert quiet.observe(False, 1.0) is True
    assert quiet.idle
    assert quiet.observe(True, 60.1) is False
    assert quiet.observe(False, 60.5) is False
    assert quiet.observe(False, 61.2) is True


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 5)), max_size=50))
def test_a_poll_with_records_is_never_quiet_and_quiet_needs_a_second(polls):
    quiet = Quiet(after_seconds=1.0)
    now, last_records = 0.0, None
    for got, step in polls:
        now += step
        idle = quiet.observe(got, now)
        if last_records is None or got:
            last_records = now
        assert idle == (not got and now - last_records >= 1.0)


pairs = st.sets(st.tuples(st.sampled_from(["a", "b"]), st.integers(0, 5)), max_size=12)


@given(pairs, pairs)
def test_the_long_wait_only_when_nothing_wanted_is_left_out(wanted, fetched):
    wait = fetch_wait_ms(wanted, fetched, partial_ms=SHORT, full_ms=LONG)
    assert wait == (LONG if all(w in fetched for w in wanted) else SHORT)


@asynccontextmanager
async def a_fetcher(leaders: dict[TopicPartition, int]) -> AsyncIterator[Fetcher]:
    """A real aiokafka Fetcher (its routine idle on an empty assignment) over a cluster whose
    partitions are led by ``leaders``; stopped on the way out."""
    loop = asyncio.get_running_loop()
    idle = SimpleNamespace(active=True, unassign_future=loop.create_future(), tps=[])
    subscriptions = SimpleNamespace(
        subscription=SimpleNamespace(assignment=idle), register_fetch_waiters=lambda waiters: None
    )
    cluster = SimpleNamespace(leader_for_partition=leaders.get, broker_metadata=lambda node: object())
    client = SimpleNamespace(_loop=loop, _metadata_max_age_ms=300_000, cluster=cluster)
    fetcher = Fetcher(client, subscriptions, fetch_max_wait_ms=SHORT, fetcher_timeout=3600.0)
    try:
        yield fetcher
    finally:
        fetcher._fetch_task.cancel()
        await asyncio.gather(fetcher._fetch_task, return_exceptions=True)


def assigned(*tps: TopicPartition) -> Assignment:
    assignment = Assignment(list(tps))
    for tp in tps:
        assignment.state_value(tp).seek(0)  # a valid position: fetchable
    return assignment


def waits(fetcher: Fetcher, assignment: Assignment) -> dict[int, int]:
    requests = fetcher._get_actions_per_node(assignment)[0]
    return {node: getattr(request, REQUEST_WAIT_ATTRIBUTE) for node, request in requests}


async def test_a_fetch_holding_every_partition_of_its_broker_waits_long():
    p0, p1, p2 = (TopicPartition(TOPIC, n) for n in range(3))
    async with a_fetcher({p0: 1, p1: 1, p2: 2}) as fetcher:
        assert install(SimpleNamespace(_fetcher=fetcher), partial_ms=SHORT, full_ms=LONG)
        assert waits(fetcher, assigned(p0, p1, p2)) == {1: LONG, 2: LONG}


async def test_a_fetch_that_leaves_out_a_partition_with_records_still_buffered_waits_short():
    p0, p1, p2 = (TopicPartition(TOPIC, n) for n in range(3))
    async with a_fetcher({p0: 1, p1: 1, p2: 2}) as fetcher:
        install(SimpleNamespace(_fetcher=fetcher), partial_ms=SHORT, full_ms=LONG)
        # p1's records have waited past aiokafka's prefetch backoff: the fetch to broker 1 goes
        # without it, and data for p1 would wait for that fetch to end.
        fetcher._records[p1] = SimpleNamespace(calculate_backoff=lambda: 0)
        assert waits(fetcher, assigned(p0, p1, p2)) == {1: SHORT, 2: LONG}


async def test_a_fetch_that_leaves_out_a_paused_partition_waits_short():
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    async with a_fetcher({p0: 1, p1: 1}) as fetcher:
        install(SimpleNamespace(_fetcher=fetcher), partial_ms=SHORT, full_ms=LONG)
        assignment = assigned(p0, p1)
        assignment.state_value(p1).pause()
        assert waits(fetcher, assignment) == {1: SHORT}
        assignment.state_value(p1).resume()
        assert waits(fetcher, assignment) == {1: LONG}


async def test_while_a_partition_has_no_known_leader_every_fetch_waits_short():
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    async with a_fetcher({p0: 1}) as fetcher:  # p1's leader unknown: it may be broker 1
        install(SimpleNamespace(_fetcher=fetcher), partial_ms=SHORT, full_ms=LONG)
        assert waits(fetcher, assigned(p0, p1)) == {1: SHORT}


async def test_a_partition_counts_for_the_broker_it_is_read_from_not_its_leader():
    p0, p1 = TopicPartition(TOPIC, 0), TopicPartition(TOPIC, 1)
    async with a_fetcher({p0: 1, p1: 1}) as fetcher:
        install(SimpleNamespace(_fetcher=fetcher), partial_ms=SHORT, full_ms=LONG)
        # p1 is read from broker 2, a follower nearer the consumer (KIP-392), though broker 1 leads it.
        fetcher._preferred_read_replica[p1] = (2, time.monotonic() + 60)
        assert waits(fetcher, assigned(p0, p1)) == {1: LONG, 2: LONG}
        fetcher._records[p1] = SimpleNamespace(calculate_backoff=lambda: 0)  # left out of broker 2's
        assert waits(fetcher, assigned(p0, p1)) == {1: LONG}


async def test_a_wait_that_cannot_be_chosen_leaves_the_fetcher_running_on_short_waits():
    p0 = TopicPartition(TOPIC, 0)
    async with a_fetcher({p0: 1}) as fetcher:
        install(SimpleNamespace(_fetcher=fetcher), partial_ms=SHORT, full_ms=LONG)
        assert waits(fetcher, assigned(p0)) == {1: LONG}
        assignment = assigned(p0)
        assignment._topic_partitions = _Unreadable(assignment.tps)
        assert waits(fetcher, assignment) == {1: SHORT}  # the wrapper failed: the built wait stands
        assert waits(fetcher, assigned(p0)) == {1: SHORT}  # and it stays out of the way from then on


class _Unreadable(frozenset):
    """Partitions that aiokafka can walk once (building the requests) but the wrapper cannot."""

    def __new__(cls, tps: frozenset) -> Self:
        made = super().__new__(cls, tps)
        made.walks = 0
        return made

    def __iter__(self):
        self.walks += 1
        if self.walks > 1:
            raise RuntimeError("a changed aiokafka")
        return super().__iter__()


async def test_unwrapped_every_fetch_keeps_the_consumers_wait_and_a_second_install_changes_nothing():
    p0 = TopicPartition(TOPIC, 0)
    async with a_fetcher({p0: 1}) as fetcher:
        assert waits(fetcher, assigned(p0)) == {1: SHORT}
        consumer = SimpleNamespace(_fetcher=fetcher)
        assert install(consumer, partial_ms=SHORT, full_ms=LONG)
        built = fetcher._get_actions_per_node
        assert install(consumer, partial_ms=SHORT, full_ms=LONG)
        assert fetcher._get_actions_per_node is built
        assert waits(fetcher, assigned(p0)) == {1: LONG}


async def test_a_consumer_without_a_fetcher_is_left_alone():
    consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")
    assert install(consumer, partial_ms=SHORT, full_ms=LONG) is False


def test_the_wait_set_on_a_request_is_the_wait_it_sends():
    request = FetchRequest(SHORT, 1, 1 << 20, 0, [(TOPIC, [(0, 5, 1 << 20)])])
    setattr(request, REQUEST_WAIT_ATTRIBUTE, LONG)
    assert request.build(FetchRequest_v4).max_wait_time == LONG


def test_every_consumer_of_the_platform_gets_the_fetch_wait_and_wakes_its_idle_fetcher_once_a_second():
    """aiokafka's fetcher looks at its partitions every ``consumer_timeout_ms`` when nothing else woke
    it (200 ms by default): each consumer the platform builds passes the longer timeout, and aiokafka
    still takes it as the fetcher's wait; each one that reads records also has its fetches' waits."""
    platform = Path(fetch_wait.__file__).parent
    built = {
        path.name: path.read_text().count("AIOKafkaConsumer(")
        for path in platform.glob("*.py")
        if "AIOKafkaConsumer(" in path.read_text()
    }
    assert set(built) == {"consuming.py", "tailing.py", "lanes.py", "offset_clients.py"}, built
    for name, count in built.items():
        assert (platform / name).read_text().count("consumer_timeout_ms=FETCHER_TIMEOUT_MS") == count, name
    for name in ("consuming.py", "tailing.py", "lanes.py"):  # offset_clients' consumers read no records
        assert "fetch_wait.install(" in (platform / name).read_text(), name
    source = Path(AIOKafkaConsumer.__init__.__code__.co_filename).read_text()
    assert "fetcher_timeout=self._consumer_timeout" in source
    assert FETCHER_TIMEOUT_MS == 1000
