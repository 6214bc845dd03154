"""Conditions: typed comparisons, and/or/not trees, presets, and the laws of logic under random inputs."""

from __future__ import annotations

import operator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.language.conditions import (
    MAX_DEPTH,
    PRESETS,
    AllOf,
    AnyOf,
    Comparison,
    ConditionError,
    Negation,
    Operator,
    evaluate,
    parse_condition,
    referenced_fields,
)
from pydantic import ValidationError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
DATA = {
    "amount": 1500,
    "ratio": 0.5,
    "name": "Ada Lovelace",
    "tier": "enterprise",
    "paid": True,
    "note": None,
    "blank": "",
    "tags": ["vip", "new", 3],
    "empty_list": [],
    "address": {"city": "London"},
    "empty_object": {},
    "due": "2026-03-01",
    "sent": "2026-03-04T09:00:00Z",
    "items": [{"name": "bolt"}, {"name": "nut"}],
}
CONTEXT = {"record": DATA}


def check(field, operator_, value=None, value_to=None, *, now=NOW):
    comparison = Comparison(field=f"record.{field}", operator=operator_, value=value, value_to=value_to)
    return evaluate(comparison, CONTEXT, now=now)


# --- every operator ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "operator_", "value", "value_to", "expected"),
    [
        ("amount", "equals", 1500, None, True),
        ("amount", "equals", 1500.0, None, True),
        ("amount", "equals", "1500", None, False),
        ("paid", "equals", 1, None, False),
        ("paid", "equals", True, None, True),
        ("tags", "equals", ["vip", "new", 3.0], None, True),
        ("address", "equals", {"city": "London"}, None, True),
        ("note", "equals", None, None, True),
        ("missing", "equals", None, None, True),
        ("name", "equals", "ada lovelace", None, False),
        ("amount", "not_equals", 1500, None, False),
        ("amount", "not_equals", "1500", None, True),
        ("missing", "not_equals", "paid", None, True),
        ("amount", "greater_than", 1000, None, True),
        ("amount", "greater_than", 1500, None, False),
        ("ratio", "greater_than", 0.25, None, True),
        ("amount", "greater_than_or_equals", 1500, None, True),
        ("amount", "less_than", 1500.5, None, True),
        ("amount", "less_than_or_equals", 1499, None, False),
        ("name", "greater_than", "Ab", None, True),
        ("sent", "greater_than", "2026-03-04", None, True),
        ("due", "less_than", "today", None, True),
        ("missing", "greater_than", 5, None, False),
        ("note", "less_than", 5, None, False),
        ("name", "contains", "Love", None, True),
        ("name", "contains", "love", None, False),
        ("tags", "contains", "vip", None, True),
        ("tags", "contains", 3.0, None, True),
        ("tags", "contains", "3", None, False),
        ("missing", "contains", "x", None, False),
        ("name", "not_contains", "Babbage", None, True),
        ("tags", "not_contains", "vip", None, False),
        ("missing", "not_contains", "x", None, True),
        ("name", "starts_with", "Ada", None, True),
        ("name", "starts_with", "Love", None, False),
        ("name", "ends_with", "lace", None, True),
        ("missing", "ends_with", "x", None, False),
        ("blank", "is_empty", None, None, True),
        ("note", "is_empty", None, None, True),
        ("missing", "is_empty", None, None, True),
        ("empty_list", "is_empty", None, None, True),
        ("empty_object", "is_empty", None, None, True),
        ("amount", "is_empty", None, None, False),
        ("paid", "is_empty", None, None, False),
        ("name", "is_not_empty", None, None, True),
        ("missing", "is_not_empty", None, None, False),
        ("tier", "in", ["enterprise", "pro"], None, True),
        ("amount", "in", [1500.0, 2], None, True),
        ("amount", "in", ["1500"], None, False),
        ("missing", "in", ["a"], None, False),
        ("missing", "in", [None], None, True),
        ("tier", "not_in", ["free"], None, True),
        ("tier", "not_in", ["enterprise"], None, False),
        ("missing", "not_in", ["a"], None, True),
        ("name", "matches", r"^Ada\s+\w+$", None, True),
        ("name", "matches", "(?i)LOVELACE", None, True),
        ("name", "matches", "Babbage", None, False),
        ("missing", "matches", "x", None, False),
        ("due", "before", "2026-03-02", None, True),
        ("due", "before", "2026-03-01T00:00:00Z", None, False),
        ("due", "before", "today", None, True),
        ("sent", "before", "now", None, True),
        ("sent", "after", "-1d", None, True),
        ("sent", "after", "-2h", None, False),
        ("due", "after", "-1w", None, True),
        ("sent", "after", "2026-03-04T10:00:00+02:00", None, True),
        ("missing", "before", "today", None, False),
        ("amount", "between", 1000, 1500, True),
        ("amount", "between", 1500, 2000, True),
        ("amount", "between", 1501, 2000, False),
        ("amount", "between", 2000, 1000, False),
        ("due", "between", "2026-02-01", "2026-03-01", True),
        ("sent", "between", "-1d", "+1d", True),
        ("name", "between", "A", "B", True),
        ("missing", "between", 1, 2, False),
        ("name", "length_equals", 12, None, True),
        ("tags", "length_equals", 3, None, True),
        ("address", "length_equals", 1, None, True),
        ("tags", "length_greater_than", 2, None, True),
        ("tags", "length_less_than", 3, None, False),
        ("blank", "length_less_than", 1, None, True),
        ("missing", "length_less_than", 1, None, False),
        ("items.1.name", "equals", "nut", None, True),
        ("items.2.name", "is_empty", None, None, True),
        ("items.x", "is_empty", None, None, True),
        ("name.first", "is_empty", None, None, True),
    ],
)
def test_each_operator_compares_by_type(field, operator_, value, value_to, expected):
    assert check(field, operator_, value, value_to) is expected


@pytest.mark.parametrize(
    ("field", "operator_", "value", "value_to", "message"),
    [
        (
            "name",
            "greater_than",
            5,
            None,
            "cannot compare text 'Ada Lovelace' with number 5 using greater_than",
        ),
        ("amount", "less_than", "2000", None, "cannot compare number 1500 with text '2000' using less_than"),
        (
            "paid",
            "greater_than",
            False,
            None,
            "cannot compare boolean true with boolean false using greater_than",
        ),
        ("tags", "less_than_or_equals", [1], None, "cannot compare a list of 3 items with a list of 1 items"),
        ("amount", "greater_than", None, None, "greater_than needs a value to compare with"),
        ("name", "after", "today", None, "cannot compare|after expects a date, got text 'Ada Lovelace'"),
        ("amount", "before", "2026-01-01", None, "before expects a date, got number 1500"),
        ("due", "before", "soon", None, "before needs an ISO-8601 date or 'now', 'today'"),
        ("due", "before", 20260101, None, "before needs an ISO-8601 date"),
        (
            "name",
            "greater_than_or_equals",
            "+7d",
            None,
            "cannot compare text 'Ada Lovelace' with text '\\+7d'",
        ),
        ("amount", "between", 1, None, "between needs both value and value_to"),
        ("amount", "contains", 1, None, "contains works on text and lists, not on number 1500"),
        ("name", "contains", 1, None, "contains needs a text value, got number 1"),
        ("tags", "starts_with", "v", None, "starts_with works on text, not on a list of 3 items"),
        ("name", "ends_with", None, None, "ends_with needs a text value, got null"),
        ("tier", "in", "enterprise", None, "in needs a list value, got text 'enterprise'"),
        ("tier", "not_in", None, None, "not_in needs a list value, got null"),
        ("amount", "matches", "1", None, "matches works on text, not on number 1500"),
        ("name", "matches", "(", None, "invalid pattern '\\(': missing \\)"),
        ("name", "matches", "a" * 1001, None, "a pattern may be at most 1000 characters"),
        ("name", "matches", r"(a)\1", None, "invalid pattern"),
        ("amount", "length_equals", 4, None, "length_equals works on text, lists and objects, not on number"),
        ("name", "length_greater_than", "3", None, "length_greater_than needs a whole number of at least 0"),
        ("name", "length_less_than", -1, None, "length_less_than needs a whole number of at least 0"),
    ],
)
def test_a_type_mismatch_or_bad_value_is_an_error_that_names_both_sides(
    field, operator_, value, value_to, message
):
    with pytest.raises(ConditionError, match=message):
        check(field, operator_, value, value_to)


@pytest.mark.parametrize(
    ("operator_", "value", "message"),
    [
        ("starts_with", 5, "starts_with needs a text value, got number 5"),
        ("ends_with", None, "ends_with needs a text value, got null"),
        ("in", "a", "in needs a list value"),
        ("matches", "[", "invalid pattern"),
        ("length_equals", "two", "length_equals needs a whole number"),
        ("before", "someday", "before needs an ISO-8601 date"),
        ("greater_than", None, "greater_than needs a value to compare with"),
    ],
)
def test_a_bad_value_is_an_error_even_when_the_field_is_missing(operator_, value, message):
    with pytest.raises(ConditionError, match=message):
        evaluate(Comparison(field="absent", operator=operator_, value=value), {}, now=NOW)


def test_a_relative_date_needs_now():
    with pytest.raises(
        ConditionError, match="'today' is relative to the current time, so evaluate needs now"
    ):
        check("due", "before", "today", now=None)
    with pytest.raises(ConditionError, match="'\\+7d' is relative"):
        check("missing", "before", "+7d", now=None)
    assert check("due", "before", "2026-03-02", now=None) is True


def test_a_catastrophic_backtracking_pattern_runs_in_linear_time_and_does_not_match():
    condition = Comparison(field="text", operator=Operator.MATCHES, value="(a+)+$")
    assert evaluate(condition, {"text": "a" * 50000 + "b"}) is False
    assert evaluate(condition, {"text": "b" + "a" * 50000}) is True


# --- trees, validation and serialisation ------------------------------------------------------------


def test_and_or_not_combine_comparisons():
    big = Comparison(field="record.amount", operator=Operator.GREATER_THAN, value=1000)
    london = Comparison(field="record.address.city", operator=Operator.EQUALS, value="Paris")
    assert evaluate(AllOf(all=(big, Negation(condition=london))), CONTEXT) is True
    assert evaluate(AnyOf(any=(london, Negation(condition=big))), CONTEXT) is False
    assert evaluate(AllOf(all=()), CONTEXT) is True
    assert evaluate(AnyOf(any=()), CONTEXT) is False


def test_and_or_stop_at_the_first_deciding_branch():
    broken = Comparison(field="record.name", operator=Operator.GREATER_THAN, value=5)
    yes = Comparison(field="record.paid", operator=Operator.EQUALS, value=True)
    assert evaluate(AnyOf(any=(yes, broken)), CONTEXT) is True
    assert evaluate(AllOf(all=(Negation(condition=yes), broken)), CONTEXT) is False
    with pytest.raises(ConditionError):
        evaluate(AllOf(all=(yes, broken)), CONTEXT)


def test_conditions_are_read_from_and_written_to_json_with_and_or_not_keys():
    raw = {
        "and": [
            {"field": "record.amount", "operator": "greater_than", "value": 10},
            {"or": [
                {"not": {"field": "record.note", "operator": "is_empty"}},
                {"field": "x", "operator": "in", "value": [1]},
            ]},
        ]
    }  # fmt: skip
    condition = parse_condition(raw)
    assert isinstance(condition, AllOf)
    assert isinstance(condition.all[1], AnyOf)
    assert isinstance(condition.all[1].any[0], Negation)
    dumped = condition.model_dump(mode="json", exclude_defaults=True)
    assert dumped == raw
    assert AllOf.model_validate(raw) == condition


def test_an_unknown_operator_is_a_validation_error_that_lists_the_allowed_ones():
    with pytest.raises(ValidationError) as raised:
        parse_condition({"field": "a", "operator": "bigger_than", "value": 1})
    message = str(raised.value)
    assert "bigger_than" in message
    for allowed in Operator:
        assert f"'{allowed.value}'" in message


def test_the_operators_are_exactly_the_documented_ones():
    assert [operator_.value for operator_ in Operator] == [
        "equals", "not_equals", "greater_than", "greater_than_or_equals", "less_than", "less_than_or_equals",
        "contains", "not_contains", "starts_with", "ends_with", "is_empty", "is_not_empty", "in", "not_in",
        "matches", "before", "after", "between", "length_equals", "length_greater_than", "length_less_than",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"field": "", "operator": "equals"}, "at least 1 character"),
        ({"field": "a..b", "operator": "equals"}, "is not a dotted path"),
        ({"field": "a", "operator": "equals", "extra": 1}, "Extra inputs are not permitted"),
        ({"and": [], "field": "a"}, "Extra inputs are not permitted"),
        ({"and": {"field": "a", "operator": "equals"}}, "tuple"),
        ({"operator": "equals"}, "field"),
        (5, "a condition is an object with 'field' and 'operator', or with 'and', 'or' or 'not'"),
    ],
)
def test_malformed_conditions_are_refused_when_validated(raw, message):
    with pytest.raises(ValidationError, match=message):
        parse_condition(raw)


def test_nesting_is_limited_in_depth():
    def nested(depth):
        condition = {"field": "a", "operator": "is_empty"}
        for _ in range(depth - 1):
            condition = {"not": condition}
        return condition

    assert isinstance(parse_condition(nested(MAX_DEPTH)), Negation)
    with pytest.raises(ValidationError, match=f"at most {MAX_DEPTH} levels deep"):
        parse_condition(nested(MAX_DEPTH + 1))
    with pytest.raises(ValidationError):
        parse_condition(nested(5000))


def test_referenced_fields_lists_every_path_read():
    condition = parse_condition(
        {"or": [{"field": "nodes.check.output.status", "operator": "equals", "value": "ok"},
                {"not": {"and": [{"field": "items.0.name", "operator": "is_empty"}]}}]}
    )  # fmt: skip
    assert referenced_fields(condition) == {("nodes", "check", "output", "status"), ("items", "0", "name")}


# --- presets ----------------------------------------------------------------------------------------


def record(**data):
    return {"trigger": {"record": {"data": data}}}


@pytest.mark.parametrize(
    ("preset", "data", "expected"),
    [
        ("invoice_overdue", {"status": "open", "due_date": "2026-03-03"}, True),
        ("invoice_overdue", {"status": "open", "due_date": "2026-03-04"}, False),
        ("invoice_overdue", {"status": "paid", "due_date": "2026-01-01"}, False),
        ("invoice_overdue", {"status": "open"}, False),
        ("high_value_invoice", {"amount": 10000}, True),
        ("high_value_invoice", {"amount": 9999.99}, False),
        ("high_value_invoice", {}, False),
        ("enterprise_customer", {"tier": "enterprise", "employees": 5}, True),
        ("enterprise_customer", {"tier": "pro", "employees": 1000}, True),
        ("enterprise_customer", {"tier": "pro", "employees": 999}, False),
        ("urgent_ticket", {"priority": "critical", "subject": "hello"}, True),
        ("urgent_ticket", {"priority": "low", "subject": "URGENT: server down"}, True),
        ("urgent_ticket", {"priority": "low", "subject": "question"}, False),
        ("project_near_deadline", {"status": "active", "deadline": "2026-03-10T00:00:00Z"}, True),
        ("project_near_deadline", {"status": "active", "deadline": "2026-03-12"}, False),
        ("project_near_deadline", {"status": "done", "deadline": "2026-03-05"}, False),
        ("payment_failed", {"payment_status": "declined"}, True),
        ("payment_failed", {"payment_status": "succeeded"}, False),
    ],
)
def test_presets_decide_as_their_names_say(preset, data, expected):
    assert evaluate(PRESETS[preset].condition, record(**data), now=NOW) is expected


def test_presets_read_only_trigger_record_data_and_round_trip_through_json():
    assert set(PRESETS) == {
        "invoice_overdue", "high_value_invoice", "enterprise_customer", "urgent_ticket",
        "project_near_deadline", "payment_failed",
    }  # fmt: skip
    for condition in (preset.condition for preset in PRESETS.values()):
        assert all(path[:3] == ("trigger", "record", "data") for path in referenced_fields(condition))
        assert parse_condition(condition.model_dump(mode="json")) == condition


# --- properties -------------------------------------------------------------------------------------

numbers = st.integers(min_value=-(10**6), max_value=10**6) | st.floats(
    min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False
)
NUMERIC = [
    "equals",
    "not_equals",
    "greater_than",
    "greater_than_or_equals",
    "less_than",
    "less_than_or_equals",
]
leaves = st.builds(
    lambda field, operator_, value: Comparison(field=field, operator=operator_, value=value),
    st.sampled_from(["n.a", "n.b", "n.c"]),
    st.sampled_from(NUMERIC),
    numbers,
)
trees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: AllOf(all=tuple(items))),
        st.lists(children, max_size=3).map(lambda items: AnyOf(any=tuple(items))),
        children.map(lambda child: Negation(condition=child)),
    ),
    max_leaves=10,
)
contexts = st.fixed_dictionaries({"n": st.fixed_dictionaries({"a": numbers, "b": numbers, "c": numbers})})


@given(trees, contexts)
def test_not_is_the_opposite(condition, context):
    assert evaluate(Negation(condition=condition), context) is (not evaluate(condition, context))


@given(trees, trees, contexts)
def test_and_and_or_follow_boolean_logic(left, right, context):
    a, b = evaluate(left, context), evaluate(right, context)
    assert evaluate(AllOf(all=(left, right)), context) is (a and b)
    assert evaluate(AnyOf(any=(left, right)), context) is (a or b)
    assert evaluate(AllOf(all=(left, right)), context) is evaluate(AllOf(all=(right, left)), context)
    de_morgan = AnyOf(any=(Negation(condition=left), Negation(condition=right)))
    assert evaluate(Negation(condition=AllOf(all=(left, right))), context) is evaluate(de_morgan, context)


PYTHON = {
    "equals": operator.eq,
    "not_equals": operator.ne,
    "greater_than": operator.gt,
    "greater_than_or_equals": operator.ge,
    "less_than": operator.lt,
    "less_than_or_equals": operator.le,
}


@given(numbers, numbers, st.sampled_from(NUMERIC))
def test_numeric_comparisons_agree_with_python(actual, expected, operator_):
    condition = Comparison(field="x", operator=operator_, value=expected)
    assert evaluate(condition, {"x": actual}) is PYTHON[operator_](actual, expected)


@given(numbers, numbers, numbers)
def test_between_is_inclusive_at_both_ends(actual, low, high):
    condition = Comparison(field="x", operator=Operator.BETWEEN, value=low, value_to=high)
    assert evaluate(condition, {"x": actual}) is (low <= actual <= high)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
any_leaves = st.builds(
    lambda field, operator_, value, value_to: Comparison(
        field=field, operator=operator_, value=value, value_to=value_to
    ),
    st.from_regex(r"[a-z]{1,5}(\.[a-z0-9]{1,5}){0,3}", fullmatch=True),
    st.sampled_from(list(Operator)),
    json_values,
    json_values,
)
any_trees = st.recursive(
    any_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda items: AllOf(all=tuple(items))),
        st.lists(children, max_size=3).map(lambda items: AnyOf(any=tuple(items))),
        children.map(lambda child: Negation(condition=child)),
    ),
    max_leaves=8,
)


@given(any_trees)
def test_a_condition_survives_a_json_round_trip(condition):
    assert parse_condition(condition.model_dump(mode="json", by_alias=True)) == condition
    assert parse_condition(condition.model_dump(by_alias=True)) == condition
