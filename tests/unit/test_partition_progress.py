"""Committing offsets while commands finish out of order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform.offsets import PartitionProgress

pytestmark = pytest.mark.unit


def test_the_commit_waits_for_the_oldest_running_command():
    progress = PartitionProgress()
    for offset in (10, 11, 12):
        progress.started(offset)

    progress.finished(12)
    progress.finished(11)
    assert progress.to_commit() == 10

    progress.finished(10)
    assert progress.to_commit() == 13
    progress.committed(13)
    assert progress.to_commit() is None


def test_nothing_started_means_nothing_to_commit_and_starts_go_in_order():
    progress = PartitionProgress()

    assert progress.to_commit() is None
    progress.started(5)
    with pytest.raises(ValueError):
        progress.started(5)


@given(
    st.integers(1, 40).flatmap(
        lambda n: st.tuples(st.just(n), st.permutations(range(n)), st.sets(st.integers(0, n - 1)))
    )
)
def test_a_commit_never_passes_a_command_that_has_not_finished(case: tuple[int, list[int], set[int]]):
    count, finish_order, unfinished = case
    progress = PartitionProgress()
    for offset in range(count):
        progress.started(100 + offset)
    done: set[int] = set()
    for offset in finish_order:
        if offset in unfinished:
            continue
        progress.finished(100 + offset)
        done.add(offset)
        position = progress.to_commit()
        if position is not None:
            assert all(o in done for o in range(position - 100))
            progress.committed(position)
    expected = 100 + (min(unfinished) if unfinished else count)
    assert progress.position() == expected
