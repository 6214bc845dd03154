"""Readiness with hysteresis: ready at the first success after start, down only after two failed
checks in a row, up again only after two good ones in a row, so it does not flap."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.platform.readiness import Hysteresis

pytestmark = pytest.mark.unit


def reported(checks: list[bool]) -> list[bool]:
    state = Hysteresis()
    return [state.observe(check) for check in checks]


def test_a_starting_service_is_ready_at_its_first_success():
    assert reported([False, False, True]) == [False, False, True]


def test_one_failed_check_does_not_make_it_unready_and_two_do():
    assert reported([True, False, True, False, False]) == [True, True, True, True, False]


def test_a_flapping_dependency_is_reported_down_until_it_holds():
    assert reported([True, False, False, True, False, True, True]) == [
        True,
        True,
        False,
        False,
        False,
        False,
        True,
    ]


@given(st.lists(st.booleans(), max_size=60))
def test_the_report_changes_at_most_once_per_two_checks_after_the_first_up(checks: list[bool]):
    answers = reported(checks)
    first_up = next((i for i, up in enumerate(answers) if up), len(answers))
    changes = [i for i in range(first_up + 1, len(answers)) if answers[i] != answers[i - 1]]
    assert all(b - a >= 2 for a, b in itertools.pairwise(changes))
    for i in changes:  # every change follows two checks that agree with it
        assert checks[i] == answers[i] and checks[i - 1] == answers[i]
