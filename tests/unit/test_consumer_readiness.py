"""Judging whether a Kafka consumer does its work, from samples of its assignment, positions and end
offsets over time (millrace_common.platform.readiness): no assignment for too long, a topic that does
not exist, or a partition whose position stands while its end is ahead makes it not ready; idle,
moving or a standby member with no partitions is ready."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform.readiness import (
    ConsumerHistory,
    ConsumerSample,
    ReadinessLimits,
    judge,
    observe,
    started,
)

pytestmark = pytest.mark.unit

LIMITS = ReadinessLimits(assignment_seconds=30, progress_seconds=60)
P0 = ("runs.events", 0)
P1 = ("runs.events", 1)


def fold(samples: list[ConsumerSample], start: float = 0.0) -> ConsumerHistory:
    history = started("approval", start)
    for sample in samples:
        history = observe(history, sample)
    return history


def held(at: float, positions: dict, ends: dict) -> ConsumerSample:
    return ConsumerSample(at, frozenset(positions), positions=positions, ends=ends)


def test_a_starting_consumer_is_ready_until_the_assignment_time_has_passed():
    history = fold([ConsumerSample(10, None)])
    assert judge(history, now=29, limits=LIMITS) == []
    assert judge(history, now=31, limits=LIMITS) == [
        "consumer approval: no partition assignment for 31 s (since it started)"
    ]


def test_losing_the_assignment_counts_from_the_loss_and_an_assignment_ends_it():
    history = fold([held(5, {P0: 3}, {P0: 3}), ConsumerSample(40, None), ConsumerSample(60, None)])
    assert judge(history, now=69, limits=LIMITS) == []
    assert judge(history, now=71, limits=LIMITS) == [
        "consumer approval: no partition assignment for 31 s (since it lost its last one)"
    ]
    assert judge(observe(history, held(72, {P1: 0}, {P1: 0})), now=200, limits=LIMITS) == []


def test_a_member_given_no_partitions_is_a_ready_standby():
    history = fold([ConsumerSample(1, frozenset())])
    assert judge(history, now=10_000, limits=LIMITS) == []


def test_a_topic_that_does_not_exist_makes_it_not_ready_after_the_assignment_time():
    history = fold([ConsumerSample(0, frozenset(), missing_topics=frozenset({"runs.events"}))])
    assert judge(history, now=29, limits=LIMITS) == []
    assert judge(history, now=30, limits=LIMITS) == [
        "consumer approval: topic runs.events does not exist (for 30 s)"
    ]
    again = observe(history, ConsumerSample(31, frozenset()))
    assert judge(again, now=100, limits=LIMITS) == []


def test_a_position_that_stands_while_the_end_is_ahead_is_a_stall_and_moving_ends_it():
    history = fold([held(0, {P0: 5}, {P0: 5}), held(10, {P0: 5}, {P0: 9}), held(50, {P0: 5}, {P0: 20})])
    assert judge(history, now=69, limits=LIMITS) == []
    assert judge(history, now=70, limits=LIMITS) == [
        "consumer approval: no progress on runs.events[0] for 60 s while its lag is 15 (position 5)"
    ]
    assert judge(observe(history, held(71, {P0: 6}, {P0: 20})), now=100, limits=LIMITS) == []


def test_an_idle_partition_is_never_stalled():
    history = fold([held(t, {P0: 7}, {P0: 7}) for t in range(0, 1000, 100)])
    assert judge(history, now=5000, limits=LIMITS) == []


def test_a_partition_whose_offsets_could_not_be_read_keeps_what_was_known():
    history = fold([held(0, {P0: 1}, {P0: 4}), ConsumerSample(30, frozenset({P0}))])
    assert judge(history, now=61, limits=LIMITS) != []
    history = fold([held(0, {P0: 1}, {P0: 1}), ConsumerSample(30, frozenset({P0}))])
    assert judge(history, now=500, limits=LIMITS) == []


# Samples of one partition: (seconds since the previous sample, messages processed, messages added).
steps = st.lists(st.tuples(st.floats(0.5, 20), st.integers(0, 5), st.integers(0, 5)), min_size=1, max_size=40)


def samples_of(walk: list[tuple[float, int, int]]) -> list[ConsumerSample]:
    at, position, end, samples = 0.0, 0, 0, []
    for pause, processed, added in walk:
        at += pause
        end += added
        position = min(end, position + processed)
        samples.append(held(at, {P0: position}, {P0: end}))
    return samples


@given(steps, st.floats(0, 1000))
def test_a_consumer_without_lag_at_its_last_sample_is_ready_whatever_came_before(walk, later: float):
    samples = samples_of(walk)
    last = samples[-1]
    caught_up = held(last.at + 1, {P0: last.ends[P0]}, {P0: last.ends[P0]})
    assert judge(fold([*samples, caught_up]), now=caught_up.at + later, limits=LIMITS) == []


@given(steps)
def test_a_stall_is_reported_exactly_when_the_position_stood_with_lag_for_the_progress_time(walk):
    samples = samples_of(walk)
    history = fold(samples)
    now = samples[-1].at
    # The start of the last run of samples in which the position stood with lag, by brute force.
    still_since = now
    for before, after in zip(reversed(samples[:-1]), reversed(samples), strict=False):
        lagged = before.ends[P0] > before.positions[P0] and after.ends[P0] > after.positions[P0]
        if lagged and after.positions[P0] == before.positions[P0]:
            still_since = before.at
        else:
            break
    lagging = samples[-1].ends[P0] > samples[-1].positions[P0]
    stalled = lagging and now - still_since >= LIMITS.progress_seconds
    assert bool(judge(history, now=now, limits=LIMITS)) == stalled


@given(st.lists(st.one_of(st.none(), st.just(frozenset({P0}))), min_size=1, max_size=30), st.floats(0, 100))
def test_every_reason_names_the_consumer_and_an_assignment_in_the_last_sample_clears_that_reason(
    assignments, now_after
):
    samples = [
        ConsumerSample(float(i * 10), a, positions={P0: 0}, ends={P0: 0}) for i, a in enumerate(assignments)
    ]
    history = fold(samples)
    reasons = judge(history, now=samples[-1].at + now_after, limits=LIMITS)
    assert all(reason.startswith("consumer approval: ") for reason in reasons)
    if assignments[-1] is not None:
        assert reasons == []
