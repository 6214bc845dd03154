"""Group commit: concurrent callers share writes, one caller alone is written at once, and every caller
gets its own result only after its write returned (or the write's error)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.platform.group_commit import GroupCommit

pytestmark = pytest.mark.unit


class Store:
    """A write that takes a while (as a commit does) and records each batch it was given."""

    def __init__(self, delay: float = 0.01, fail_on: int | None = None) -> None:
        self.delay = delay
        self.fail_on = fail_on
        self.batches: list[list[int]] = []
        self.written: list[int] = []

    async def write(self, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        await asyncio.sleep(self.delay)
        if self.fail_on is not None and self.fail_on in items:
            raise OSError("the database went away")
        self.written.extend(items)
        return [item * 10 for item in items]


async def test_one_caller_alone_is_written_at_once_in_a_batch_of_its_own():
    store = Store()
    group = GroupCommit(store.write)
    assert await group.submit(1) == 10
    assert await group.submit(2) == 20
    assert store.batches == [[1], [2]]


async def test_callers_that_arrive_while_a_write_is_in_flight_share_the_next_one():
    store = Store(delay=0.05)
    group = GroupCommit(store.write)
    first = asyncio.ensure_future(group.submit(0))
    await asyncio.sleep(0.01)  # its write is in flight
    results = await asyncio.gather(first, *(group.submit(n) for n in range(1, 20)))
    assert results == [n * 10 for n in range(20)]
    # The first caller's write went alone; the other 19 queued behind it and shared one.
    assert store.batches == [[0], list(range(1, 20))]
    assert group.batches == 2


async def test_a_batch_is_never_larger_than_the_maximum():
    store = Store(delay=0.02)
    group = GroupCommit(store.write, max_batch=4)
    await asyncio.gather(*(group.submit(n) for n in range(11)))
    assert max(len(batch) for batch in store.batches) <= 4
    assert sorted(store.written) == list(range(11))


async def test_a_failed_write_fails_its_own_callers_only_and_the_next_batch_is_tried_afresh():
    store = Store(delay=0.02, fail_on=3)
    group = GroupCommit(store.write)
    first = asyncio.ensure_future(group.submit(0))
    await asyncio.sleep(0.005)  # the first write is in flight: the next three share the following one
    doomed = [asyncio.ensure_future(group.submit(n)) for n in (1, 2, 3)]
    assert await first == 0
    for call in doomed:
        with pytest.raises(OSError, match="went away"):
            await call
    assert await group.submit(4) == 40
    assert store.written == [0, 4]


async def test_a_caller_that_gives_up_does_not_undo_a_write_in_flight():
    store = Store(delay=0.05)
    group = GroupCommit(store.write)
    call = asyncio.ensure_future(group.submit(7))
    await asyncio.sleep(0.01)
    call.cancel()
    await group.close()
    assert store.written == [7]


async def test_a_write_that_answers_the_wrong_number_of_results_fails_its_callers():
    async def short(items: Sequence[int]) -> list[int]:
        return []

    with pytest.raises(RuntimeError, match="0 results of a group write of 1 items"):
        await GroupCommit(short).submit(1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1000), st.floats(0, 0.003)), max_size=40), st.integers(1, 8))
def test_every_caller_gets_its_own_result_whatever_the_arrival_order(calls, max_batch):
    async def run() -> None:
        store = Store(delay=0.001)
        group = GroupCommit(store.write, max_batch=max_batch)

        async def call(item: int, after: float) -> int:
            await asyncio.sleep(after)
            return await group.submit(item)

        results = await asyncio.gather(*(call(item, after) for item, after in calls))
        assert results == [item * 10 for item, _ in calls]
        assert sorted(store.written) == sorted(item for item, _ in calls)
        assert all(len(batch) <= max_batch for batch in store.batches)

    asyncio.run(run())
