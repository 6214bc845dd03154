"""Record node decisions: new data, the causation limit, and what a find asks the database for."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.language.conditions import evaluate, parse_condition
from millrace_node_runner.domain.outcomes import Failed
from millrace_node_runner.domain.records import (
    Prefilter,
    depth_refusal,
    new_data,
    prefilter,
    record_view,
    side_effect_id,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 22, tzinfo=UTC)
RECORD_ID = "3f2b6c1e-9a57-4a38-9c61-0c8f3d2b1a00"


def test_merge_sets_the_given_fields_and_replace_swaps_everything():
    old = {"a": 1, "b": {"x": 1}, "c": 3}

    assert new_data(old, {"b": None, "d": 4}, "merge") == {"a": 1, "b": None, "c": 3, "d": 4}
    assert new_data(old, {"d": 4}, "replace") == {"d": 4}


def test_changes_within_the_depth_limit_go_ahead_and_the_next_is_refused_with_the_reason():
    assert depth_refusal(0, 5) is None
    assert depth_refusal(4, 5) is None

    refused = depth_refusal(5, 5)

    assert isinstance(refused, Failed) and not refused.error.retryable
    assert refused.error.type == "causation_depth_exceeded"
    assert refused.error.message.startswith("causation depth 6 exceeds the limit of 5")


def test_side_effect_ids_are_stable_per_attempt():
    run = UUID(RECORD_ID)

    assert side_effect_id(run, "n", 1) == side_effect_id(run, "n", 1)
    assert side_effect_id(run, "n", 1) != side_effect_id(run, "n", 2)
    assert side_effect_id(run, "n", 1) != side_effect_id(run, "m", 1)


def test_equals_on_data_fields_and_id_narrow_the_query():
    condition = parse_condition(
        {
            "and": [
                {"field": "data.company", "operator": "equals", "value": "Acme"},
                {"field": "data.address.city", "operator": "equals", "value": "Oslo"},
                {"field": "data.vip", "operator": "equals", "value": True},
                {"field": "id", "operator": "equals", "value": RECORD_ID},
                {"field": "data.score", "operator": "greater_than", "value": 3},
                {"field": "data.missing", "operator": "equals", "value": None},
                {"field": "data.tags.0", "operator": "equals", "value": "x"},
            ]
        }
    )

    assert prefilter(condition) == Prefilter(
        record_id=UUID(RECORD_ID), contains={"company": "Acme", "address": {"city": "Oslo"}, "vip": True}
    )


def test_contradictions_and_impossible_ids_match_nothing_and_or_trees_are_left_to_evaluation():
    def narrowed(tree: dict) -> Prefilter:
        return prefilter(parse_condition(tree))

    same = {"field": "data.n", "operator": "equals"}
    assert narrowed({"and": [{**same, "value": 1}, {**same, "value": 2}]}).matches_nothing
    assert not narrowed({"and": [{**same, "value": 1}, {**same, "value": 1.0}]}).matches_nothing
    assert narrowed({"field": "id", "operator": "equals", "value": "not-a-uuid"}).matches_nothing
    assert narrowed({"or": [{**same, "value": 1}, {**same, "value": 2}]}) == Prefilter()
    assert prefilter(None) == Prefilter()


_SCALARS = st.one_of(st.booleans(), st.integers(-3, 3), st.sampled_from([1.0, 2.5, "a", "b", ""]), st.none())
_DATA = st.dictionaries(
    st.sampled_from(["a", "b", "c"]), st.one_of(_SCALARS, st.lists(_SCALARS, max_size=2)), max_size=3
)
_LEAF = st.builds(
    lambda field, operator, value: {"field": field, "operator": operator, "value": value},
    st.sampled_from(["data.a", "data.b", "data.c", "id"]),
    st.sampled_from(["equals", "not_equals"]),
    _SCALARS,
)


def _contained(data: object, pattern: object) -> bool:
    """PostgreSQL's ``@>`` for the objects and scalars a prefilter holds."""
    if isinstance(pattern, dict):
        return isinstance(data, dict) and all(
            k in data and _contained(data[k], v) for k, v in pattern.items()
        )
    if isinstance(pattern, bool) or isinstance(data, bool):
        return data is pattern
    return data == pattern and (isinstance(data, str) == isinstance(pattern, str))


@given(st.lists(_LEAF, min_size=1, max_size=4), _DATA)
def test_the_prefilter_never_drops_a_record_the_filters_would_match(leaves: list[dict], data: dict):
    condition = parse_condition({"and": leaves})
    record = record_view(UUID(RECORD_ID), "p", data, NOW, NOW)
    narrowed = prefilter(condition)

    if evaluate(condition, record, now=NOW):
        assert not narrowed.matches_nothing
        assert narrowed.record_id in (None, UUID(RECORD_ID))
        assert _contained(data, narrowed.contains)
