"""The AI usage report's rules: the month and grouping a query names, and the budget left."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_gateway.domain.ai_usage import (
    EVERY_DIMENSION,
    Dimension,
    InvalidUsageQuery,
    budget_left,
    grouping_asked,
    month_after,
    month_asked,
)

pytestmark = pytest.mark.unit


def test_a_month_is_named_yyyy_mm_and_defaults_to_this_one():
    assert month_asked("2025-03", today=date(2026, 7, 9)) == date(2025, 3, 1)
    assert month_asked(None, today=date(2026, 7, 9)) == date(2026, 7, 1)


@pytest.mark.parametrize(
    "text", ["2025-13", "2025-00", "2025-3", "25-03", "2025-03-01", "0000-01", "9999-12", "", "march"]
)
def test_anything_else_is_refused_naming_the_month_parameter(text: str):
    with pytest.raises(InvalidUsageQuery) as refused:
        month_asked(text, today=date(2026, 7, 9))
    assert [p.pointer for p in refused.value.problems] == ["/query/month"]
    assert refused.value.status == 422


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9998, 12, 31)))
def test_the_month_after_is_the_first_of_the_next_month(day: date):
    month = day.replace(day=1)
    after = month_after(month)
    assert after.day == 1 and after > month and (after - month).days in (28, 29, 30, 31)


def test_grouping_keeps_the_report_order_whatever_the_order_asked():
    assert grouping_asked(None) == EVERY_DIMENSION
    assert grouping_asked("model,workflow") == (Dimension.WORKFLOW, Dimension.MODEL)
    assert grouping_asked("node, node") == (Dimension.NODE,)


@pytest.mark.parametrize("text", ["", "run", "workflow,", "workflow,tenant"])
def test_an_unknown_grouping_is_refused_naming_the_group_by_parameter(text: str):
    with pytest.raises(InvalidUsageQuery) as refused:
        grouping_asked(text)
    assert [p.pointer for p in refused.value.problems] == ["/query/group_by"]


def test_the_budget_left_never_falls_below_zero_and_is_none_without_a_budget():
    assert budget_left(1000, 250) == 750
    assert budget_left(1000, 1200) == 0
    assert budget_left(None, 1200) is None
