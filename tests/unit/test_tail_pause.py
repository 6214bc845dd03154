"""A tail consumer nobody watches pauses, and ``watch_from_now`` starts it again from the topic's end.
When the end cannot be read (Kafka slow or refusing), it goes on from where it paused instead, so no
message published after the watcher registered is missed; when the consumer stops under the seek, the
watcher waits for the next one. The consumer here is a stand-in recording what it was asked."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from aiokafka import TopicPartition
from millrace_common.platform import tailing
from millrace_common.platform.tailing import TailConsumer

pytestmark = pytest.mark.unit

PARTITIONS = {TopicPartition("runs.events", 0), TopicPartition("runs.events", 1)}


class StandIn:
    def __init__(self, *, seek: str = "answers") -> None:
        self.how = seek
        self.paused: set[TopicPartition] = set()
        self.positions = {tp: 10 for tp in PARTITIONS}
        self.sought: dict[TopicPartition, int] = {}
        self.stopped_under_seek: TailConsumer | None = None

    def assignment(self) -> set[TopicPartition]:
        return set(PARTITIONS)

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused -= set(partitions)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.sought[partition] = offset

    async def seek_to_end(self, *partitions: TopicPartition) -> bool:
        if self.how == "hangs":
            await asyncio.Event().wait()
        if self.how == "refused":
            raise RuntimeError("the broker refused the offsets request")
        if self.how == "stops":
            tail = self.stopped_under_seek
            assert tail is not None
            tail._consumer = None
            tail.ready.clear()
            raise RuntimeError("partitions are not assigned")
        for tp in partitions:
            self.positions[tp] = 99
        return True

    async def position(self, partition: TopicPartition) -> int:
        return self.positions[partition]


def paused_tail(consumer: StandIn, watched: list[bool]) -> TailConsumer:
    decoder = SimpleNamespace(topics=["runs.events"])
    tail = TailConsumer(
        SimpleNamespace(),  # type: ignore[arg-type]
        "live",
        decoder,  # type: ignore[arg-type]
        lambda deliveries: asyncio.sleep(0),  # type: ignore[arg-type,return-value]
        watched=lambda: watched[0],
        pause_after_seconds=30,
    )
    tail._consumer = consumer  # type: ignore[assignment]
    tail.ready.set()
    tail._positions.update({tp: 10 for tp in PARTITIONS})
    tail._watched_at = 0.0
    tail._maybe_pause(consumer, now=31.0)  # type: ignore[arg-type]
    assert tail.paused and consumer.paused == PARTITIONS and tail.membership.held == frozenset()
    return tail


def test_a_watched_tail_does_not_pause_and_an_unwatched_one_pauses_after_the_time():
    consumer = StandIn()
    watched = [True]
    tail = paused_tail(consumer, [False])
    tail._paused = False
    consumer.paused.clear()
    tail._watched = lambda: watched[0]
    tail._maybe_pause(consumer, now=100.0)  # type: ignore[arg-type]
    assert not tail.paused
    watched[0] = False
    tail._maybe_pause(consumer, now=129.0)  # type: ignore[arg-type]
    assert not tail.paused, "paused before pause_after_seconds without a watcher"
    tail._maybe_pause(consumer, now=130.0)  # type: ignore[arg-type]
    assert tail.paused


def test_a_tail_nobody_watches_as_it_starts_pauses_at_once_and_a_watched_one_fetches():
    # A gateway just started has no streams: its feed fetching every run event for the pause time
    # cost it about 0.1 ms of CPU per run at 500 runs a second, and Kafka a fetch each time.
    consumer = StandIn()
    watched = [False]
    tail = paused_tail(consumer, watched)
    tail._paused = False
    consumer.paused.clear()
    tail._begin(consumer, now=5.0)  # type: ignore[arg-type]
    assert tail.paused and consumer.paused == PARTITIONS and tail.membership.held == frozenset()
    consumer.paused.clear()
    watched[0] = True
    tail._begin(consumer, now=6.0)  # type: ignore[arg-type]
    assert not tail.paused and not consumer.paused
    watched[0] = False
    tail._maybe_pause(consumer, now=35.9)  # type: ignore[arg-type]
    assert not tail.paused, "a watcher that just left: the tail waits the pause time"
    tail._maybe_pause(consumer, now=36.0)  # type: ignore[arg-type]
    assert tail.paused


async def test_watching_starts_a_paused_tail_again_from_the_end():
    consumer = StandIn()
    tail = paused_tail(consumer, [False])
    await tail.watch_from_now()
    assert not tail.paused and not consumer.paused
    assert tail._positions == {tp: 99 for tp in PARTITIONS}
    assert tail.membership.held == frozenset(PARTITIONS)
    assert consumer.sought == {}


@pytest.mark.parametrize("how", ["hangs", "refused"])
async def test_when_the_end_is_not_read_it_goes_on_from_where_it_paused(how, monkeypatch):
    monkeypatch.setattr(tailing, "WAKE_SECONDS", 0.05)
    consumer = StandIn(seek=how)
    tail = paused_tail(consumer, [False])
    await asyncio.wait_for(tail.watch_from_now(), 2)
    assert consumer.sought == {tp: 10 for tp in PARTITIONS}, "positions from before the pause, not the end"
    assert not tail.paused and not consumer.paused


async def test_a_consumer_stopped_under_the_seek_makes_the_watcher_wait_for_the_next_one(monkeypatch):
    monkeypatch.setattr(tailing, "WAKE_SECONDS", 2)
    consumer = StandIn(seek="stops")
    tail = paused_tail(consumer, [False])
    consumer.stopped_under_seek = tail
    watching = asyncio.create_task(tail.watch_from_now())
    await asyncio.sleep(0.05)
    assert not watching.done(), "returned before the next consumer was positioned"
    assert consumer.paused == PARTITIONS and consumer.sought == {}, "the stopped consumer was not touched"
    tail.ready.set()  # the restarted run took its positions
    await asyncio.wait_for(watching, 1)
