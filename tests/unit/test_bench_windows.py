"""The bench's windows of send time (``bench.common.windows``): a paced phase's completions cut by
when each call was sent, so a slow start shows apart from a steady queue, and a run that never
ended is counted where it was sent."""

from __future__ import annotations

import math

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


def test_a_run_that_never_ended_is_counted_in_its_window_and_the_window_starts_at_the_first_send():
    # The first send never ended: the windows still start at it, and say so.
    figures = windows([(50.0, None), (50.2, 12.0), (51.5, None), (51.7, None)], 1.0)
    assert [(f.what, f.remark) for f in figures] == [
        ("0-1 s: completion p50", "2 sent, 1 never ended, p99 12.0, max 12.0"),
        ("1-2 s: completion p50", "2 sent, 2 never ended"),
    ]
    assert figures[0].value == 12.0
    assert math.isnan(figures[1].value)


def test_no_sends_no_windows_and_a_window_must_last():
    assert windows([], 0.5) == []
    with pytest.raises(ValueError, match="more than 0"):
        windows([(1.0, 2.0)], 0)


@given(
    st.lists(
        st.tuples(st.floats(0, 60, allow_nan=False), st.floats(0, 5_000, allow_nan=False) | st.none()),
        min_size=1,
        max_size=200,
    ),
    st.sampled_from([0.25, 0.5, 1.0, 2.0]),
)
def test_every_send_is_counted_once_in_the_window_its_send_time_falls_in(timed, width):
    first = min(at for at, _ in timed)
    expected: dict[str, int] = {}
    for at, _ in timed:
        index = int((at - first) // width)
        label = f"{index * width:g}-{(index + 1) * width:g} s: completion p50"
        expected[label] = expected.get(label, 0) + 1
    figures = windows(timed, width)
    assert {f.what: int(f.remark.split(" sent")[0]) for f in figures} == expected
    starts = [float(f.what.split("-")[0]) for f in figures]
    assert starts == sorted(starts)
