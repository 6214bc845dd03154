"""Field-change detection: which fields changed, from what to what, and the from/to filters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.language.workflow import WatchedField
from millrace_trigger.domain.changes import (
    FieldChange,
    changed_fields,
    json_equal,
    read_field,
    watched_changes,
)

pytestmark = pytest.mark.unit

json_scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["open", "won", "lost", ""])
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from("abc"), children, max_size=3)
    ),
    max_leaves=8,
)
records = st.dictionaries(st.sampled_from(["status", "amount", "owner", "tags"]), json_values, max_size=4)


def watch(field: str, **narrowing: object) -> WatchedField:
    return WatchedField.model_validate({"field": field, **narrowing})


def test_reports_the_old_and_new_value_of_a_watched_field():
    changes = watched_changes(
        [watch("status")], {"status": "open", "amount": 5}, {"status": "won", "amount": 6}
    )
    assert changes == (FieldChange("status", "open", "won"),)


def test_a_field_that_did_not_change_is_not_reported():
    assert watched_changes([watch("status")], {"status": "open"}, {"status": "open", "amount": 1}) == ()


def test_from_and_to_narrow_the_change():
    spec = watch("status", **{"from": ["open"], "to": ["won"]})
    assert watched_changes([spec], {"status": "open"}, {"status": "won"}) != ()
    assert watched_changes([spec], {"status": "open"}, {"status": "lost"}) == ()
    assert watched_changes([spec], {"status": "pending"}, {"status": "won"}) == ()


def test_null_in_from_means_the_field_was_empty_or_absent():
    spec = watch("owner", **{"from": [None]})
    assert watched_changes([spec], {}, {"owner": "ada"}) == (FieldChange("owner", None, "ada"),)
    assert watched_changes([spec], {"owner": "bob"}, {"owner": "ada"}) == ()


def test_a_removed_field_changes_to_null():
    assert watched_changes([watch("owner")], {"owner": "ada"}, {}) == (FieldChange("owner", "ada", None),)


def test_nested_fields_are_read_by_dotted_path():
    old = {"address": {"city": "London"}, "lines": [{"sku": "a"}]}
    new = {"address": {"city": "Paris"}, "lines": [{"sku": "b"}]}
    assert watched_changes([watch("address.city"), watch("lines.0.sku")], old, new) == (
        FieldChange("address.city", "London", "Paris"),
        FieldChange("lines.0.sku", "a", "b"),
    )
    assert read_field(new, "lines.5.sku") is None
    assert read_field(new, "address.city.name") is None


def test_values_compare_by_json_type():
    assert json_equal(1, 1.0)
    assert not json_equal(1, True)
    assert not json_equal("1", 1)
    assert json_equal({"a": 1, "b": None}, {"a": 1.0})
    assert not json_equal([1, 2], [2, 1])


def test_changed_fields_lists_top_level_fields_in_order():
    assert changed_fields({"b": 1, "a": 1, "c": None}, {"a": 2, "b": 1, "d": 3}) == ("a", "d")


@given(records)
def test_nothing_changes_between_a_record_and_itself(record):
    assert changed_fields(record, record) == ()
    assert watched_changes([watch("status"), watch("amount")], record, dict(record)) == ()


@given(records, records)
def test_changed_fields_is_symmetric_and_matches_the_watched_changes(old, new):
    assert changed_fields(old, new) == changed_fields(new, old)
    specs = [watch(name) for name in ("status", "amount", "owner", "tags")]
    assert tuple(c.field for c in watched_changes(specs, old, new)) == tuple(
        name for name in ("status", "amount", "owner", "tags") if name in changed_fields(old, new)
    )


@given(records, records)
def test_every_reported_change_carries_the_values_from_both_states(old, new):
    for change in watched_changes([watch("status"), watch("tags")], old, new):
        assert json_equal(change.old, old.get(change.field))
        assert json_equal(change.new, new.get(change.field))
        assert not json_equal(change.old, change.new)
