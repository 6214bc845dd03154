"""Conditions as the specification writes them: the short operator spellings as aliases of the named
operators, the case-insensitive text operators, and presets with a name and a description."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.language.conditions import (
    CASE_OPERATORS,
    OPERATOR_ALIASES,
    PRESETS,
    ConditionError,
    Operator,
    evaluate,
    parse_condition,
)
from pydantic import ValidationError

pytestmark = pytest.mark.unit

values = st.integers(-1000, 1000) | st.text(max_size=8) | st.none() | st.booleans()
comparable = st.integers(-1000, 1000) | st.floats(-1e3, 1e3, allow_nan=False)


@pytest.mark.parametrize(("alias", "named"), sorted(OPERATOR_ALIASES.items()))
def test_a_short_spelling_is_stored_as_its_named_operator(alias, named):
    condition = parse_condition({"field": "trigger.amount", "operator": alias, "value": 5})
    assert condition.operator is named
    assert condition.model_dump(mode="json")["operator"] == named.value


@given(alias=st.sampled_from(sorted(OPERATOR_ALIASES)), actual=comparable, expected=comparable)
def test_a_short_spelling_decides_exactly_as_the_named_operator(alias, actual, expected):
    named = OPERATOR_ALIASES[alias].value
    context = {"trigger": {"amount": actual}}
    by_alias = parse_condition({"field": "trigger.amount", "operator": alias, "value": expected})
    by_name = parse_condition({"field": "trigger.amount", "operator": named, "value": expected})
    assert evaluate(by_alias, context) is evaluate(by_name, context)


def test_short_spellings_work_inside_groups_and_an_unknown_one_is_refused():
    tree = parse_condition(
        {
            "and": [
                {"field": "a", "operator": ">=", "value": 1},
                {"not": {"field": "b", "operator": "==", "value": 2}},
            ]
        }
    )
    assert evaluate(tree, {"a": 1, "b": 3}) is True
    assert evaluate(tree, {"a": 1, "b": 2}) is False
    with pytest.raises(ValidationError, match="Input should be 'equals'"):
        parse_condition({"field": "a", "operator": "=~", "value": 1})


@pytest.mark.parametrize(
    ("operator", "actual", "expected", "exact", "ignoring_case"),
    [
        ("contains", "Order URGENT now", "urgent", False, True),
        ("not_contains", "Order URGENT now", "urgent", True, False),
        ("starts_with", "INV-2026-001", "inv-", False, True),
        ("ends_with", "report.PDF", ".pdf", False, True),
        ("contains", "Hauptstrasse", "STRASSE", False, True),
        ("contains", "STRASSE 5", "straße", False, True),  # Unicode case folding, not lower()
        ("contains", ["VIP", "new"], "vip", False, True),
        ("contains", ["VIP", 1], 1, True, True),
        ("starts_with", None, "x", False, False),
    ],
)
def test_ignore_case_compares_text_regardless_of_case(operator, actual, expected, exact, ignoring_case):
    leaf = {"field": "trigger.text", "operator": operator, "value": expected}
    context = {"trigger": {"text": actual}}
    assert evaluate(parse_condition(leaf), context) is exact
    assert evaluate(parse_condition({**leaf, "ignore_case": True}), context) is ignoring_case


@given(text=st.text(max_size=12), part=st.text(max_size=4))
def test_ignoring_case_never_finds_less_than_the_exact_test(text, part):
    context = {"trigger": {"text": text}}
    for operator in sorted(CASE_OPERATORS - {Operator.NOT_CONTAINS}):
        leaf = {"field": "trigger.text", "operator": operator, "value": part}
        if evaluate(parse_condition(leaf), context):
            assert evaluate(parse_condition({**leaf, "ignore_case": True}), context)


def test_ignore_case_on_an_operator_it_does_not_apply_to_is_a_validation_error():
    with pytest.raises(ValidationError, match="ignore_case applies to contains, ends_with"):
        parse_condition({"field": "a", "operator": "equals", "value": "x", "ignore_case": True})


def test_ignore_case_still_refuses_a_value_that_is_not_text():
    condition = parse_condition({"field": "a", "operator": "starts_with", "value": 5, "ignore_case": True})
    with pytest.raises(ConditionError, match="starts_with needs a text value, got number 5"):
        evaluate(condition, {"a": "5x"})


def test_options_left_unused_are_not_written_so_stored_conditions_read_back_unchanged():
    plain = {"field": "a", "operator": "contains", "value": "x", "value_to": None}
    assert parse_condition(plain).model_dump(mode="json") == plain
    dumped = parse_condition({**plain, "ignore_case": True, "time_zone": "Europe/Berlin"}).model_dump(
        mode="json"
    )
    assert dumped == {**plain, "ignore_case": True, "time_zone": "Europe/Berlin"}


def test_every_preset_has_a_name_and_a_description():
    for key, preset in PRESETS.items():
        assert preset.name and preset.name != key
        assert preset.description and len(preset.description) <= 100
