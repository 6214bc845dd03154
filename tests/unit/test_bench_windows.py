"""The bench's windows of send time (``bench.common.windows``): a paced phase's completions cut by
when each call was sent, so a slow start shows apart from a steady queue."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.common import windows


def test_completions_fall_in_the_window_of_their_send_time_from_the_first_send():
    timed = [
        (100.0, 5.0),
        (100.4, 7.0),
        (100.6, 6.0),
        (101.0, 300.0),
        (101.5, 10.0),
        (101.9, 20.0),
        (103.2, 9.0),
    ]
    figures = windows(timed, 1.0)
    assert [f.what for f in figures] == [
        "0-1 s: completion p50",
        "1-2 s: completion p50",
        "3-4 s: completion p50",  # no send in 2-3 s: no window, rather than an empty one
    ]
    assert [f.value for f in figures] == [6.0, 20.0, 9.0]
    assert figures[1].remark == "3 sent, p99 300.0, max 300.0"
    assert all(f.unit == "ms" for f in figures)


def test_no_completions_no_windows():
    assert windows([], 0.5) == []


@given(
    st.lists(
        st.tuples(st.floats(0, 60, allow_nan=False), st.floats(0, 5_000, allow_nan=False)),
        min_size=1,
        max_size=200,
    ),
    st.sampled_from([0.25, 0.5, 1.0, 2.0]),
)
def test_every_completion_is_counted_once_and_no_window_is_worse_than_the_worst(timed, width):
    figures = windows(timed, width)
    counts = [int(f.remark.split(" sent")[0]) for f in figures]
    assert sum(counts) == len(timed)
    worst = max(value for _, value in timed)
    assert all(f.value <= worst for f in figures)
    shown_max = max(float(f.remark.rsplit("max ", 1)[1].replace(",", "")) for f in figures)
    assert shown_max == pytest.approx(worst, abs=0.06)  # printed to a tenth
