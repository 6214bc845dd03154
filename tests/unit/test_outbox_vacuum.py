"""When a service vacuums the outbox (``platform/outbox_vacuum.due``): enough dead rows, and no
vacuum by anyone within the interval."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform.outbox_vacuum import VACUUM_AT_DEAD_ROWS, due, vacuuming_loop
from millrace_common.platform.settings import ServiceSettings

pytestmark = pytest.mark.unit


def test_a_table_with_few_dead_rows_is_left_alone() -> None:
    assert not due(VACUUM_AT_DEAD_ROWS - 1, None, 5)
    assert not due(0, 3600, 5)


def test_enough_dead_rows_are_vacuumed_unless_someone_just_did() -> None:
    assert due(VACUUM_AT_DEAD_ROWS, None, 5), "never vacuumed"
    assert due(VACUUM_AT_DEAD_ROWS, 5.0, 5)
    assert not due(VACUUM_AT_DEAD_ROWS * 20, 4.9, 5), "autovacuum or another service was just there"


@given(
    dead=st.integers(min_value=0, max_value=10**9),
    since=st.none() | st.floats(min_value=0, max_value=10**6, allow_nan=False),
    every=st.floats(min_value=0.1, max_value=3600, allow_nan=False),
)
def test_due_is_exactly_enough_dead_rows_and_a_quiet_interval(
    dead: int, since: float | None, every: float
) -> None:
    quiet = since is None or since >= every
    assert due(dead, since, every) == (dead >= VACUUM_AT_DEAD_ROWS and quiet)


def test_zero_seconds_turns_it_off() -> None:
    assert vacuuming_loop(ServiceSettings(outbox_vacuum_seconds=0)) is None
    assert vacuuming_loop(ServiceSettings(outbox_vacuum_seconds=5)) is not None
