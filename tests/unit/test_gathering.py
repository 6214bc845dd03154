"""``Gathering``: a small batch waits for more only while its consumer is busy nearly all the time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform.gathering import BUSY_SHARE, Gathering

pytestmark = pytest.mark.unit

WAIT = 0.015
BELOW = 32


def busy(gathering: Gathering, batches: int = 30) -> Gathering:
    """Batches handled back to back: each found its first records waiting."""
    for _ in range(batches):
        gathering.handled(idle_seconds=0.0, handling_seconds=0.004)
    return gathering


def test_a_consumer_with_time_to_spare_handles_at_once():
    gathering = Gathering(WAIT, BELOW)
    assert gathering.wait_for(1) == 0.0
    for _ in range(30):
        gathering.handled(idle_seconds=0.006, handling_seconds=0.004)  # busy 40 % of the time
    assert gathering.busy == pytest.approx(0.4, abs=0.01)
    assert gathering.wait_for(1) == 0.0


def test_a_busy_consumer_waits_for_more_only_while_its_batch_is_small():
    gathering = busy(Gathering(WAIT, BELOW))
    assert gathering.busy > BUSY_SHARE
    assert gathering.wait_for(1) == WAIT
    assert gathering.wait_for(BELOW - 1) == WAIT
    assert gathering.wait_for(BELOW) == 0.0
    assert gathering.wait_for(500) == 0.0


def test_no_wait_never_waits():
    assert busy(Gathering(0.0, BELOW)).wait_for(1) == 0.0


def test_one_slow_batch_after_a_quiet_spell_does_not_start_gathering():
    gathering = Gathering(WAIT, BELOW)
    for _ in range(5):
        gathering.handled(idle_seconds=1.0, handling_seconds=0.004)
    gathering.handled(idle_seconds=0.0, handling_seconds=1.0)
    assert gathering.wait_for(1) == 0.0


def test_a_quiet_spell_stops_gathering_and_a_busy_one_starts_it_again():
    gathering = busy(Gathering(WAIT, BELOW))
    for _ in range(3):
        gathering.handled(idle_seconds=1.0, handling_seconds=0.004)
    assert gathering.wait_for(1) == 0.0, "a consumer that has gone quiet handles at once again"
    busy(gathering, batches=40)
    assert gathering.wait_for(1) == WAIT, "and gathers again once it is back at work"


def test_the_busy_share_weighs_batches_by_their_time():
    gathering = Gathering(WAIT, BELOW)
    for _ in range(30):
        # Short batches back to back, then a long wait: 40 ms of work in 100 ms, whatever the count.
        gathering.handled(idle_seconds=0.0, handling_seconds=0.004)
        gathering.handled(idle_seconds=0.0, handling_seconds=0.004)
        gathering.handled(idle_seconds=0.06, handling_seconds=0.032)
    assert 0.3 < gathering.busy < 0.6
    assert gathering.wait_for(1) == 0.0


def test_nothing_handled_yet_is_not_busy():
    gathering = Gathering(WAIT, BELOW)
    assert gathering.busy == 0.0
    gathering.handled(idle_seconds=0.0, handling_seconds=0.0)
    assert gathering.busy == 0.0


@given(
    st.lists(st.tuples(st.floats(-1, 10, allow_nan=False), st.floats(-1, 10, allow_nan=False)), max_size=60),
    st.integers(0, 10_000),
    st.floats(0, 1, allow_nan=False),
)
def test_the_busy_share_stays_a_share_and_the_wait_is_all_or_nothing(batches, records, wait):
    gathering = Gathering(wait, BELOW)
    for idle, handling in batches:
        gathering.handled(idle_seconds=idle, handling_seconds=handling)
        assert 0.0 <= gathering.busy <= 1.0
    waited = gathering.wait_for(records)
    assert waited in (0.0, wait)
    if waited:
        assert records < BELOW and gathering.busy >= BUSY_SHARE
