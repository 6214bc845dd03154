"""docs/templates-and-conditions.md against the code: its tables of template functions and filters,
condition operators, operator aliases, relative date values and presets are exactly the lists in
``millrace_common.language.templating`` and ``.conditions``, so a function, an operator, a spelling or a
preset added to the code fails here until the document describes it (and one the document invents
fails too)."""

from __future__ import annotations

import re

import pytest
from millrace_common.language.conditions import (
    CASE_OPERATORS,
    OPERATOR_ALIASES,
    PRESETS,
    RELATIVE_VALUES,
    Operator,
)
from millrace_common.language.templating import TEMPLATE_FILTERS, TEMPLATE_FUNCTIONS

from tests.support.node_reference import DOCS, code_spans

pytestmark = pytest.mark.unit

TEXT = (DOCS / "templates-and-conditions.md").read_text()


def table_following(marker: str) -> list[list[str]]:
    """The rows (header and rule left out) of the first table after the first line starting with
    ``marker``."""
    lines = TEXT.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(marker)), None)
    assert start is not None, f"no line starting with {marker!r} in the document"
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]])
        elif rows:
            break
    assert len(rows) >= 3, f"no table after {marker!r}"
    return rows[2:]


def first_column_names(marker: str) -> list[str]:
    """Each code span of each first cell, the call's parentheses left out: `days_until(date, zone)`
    names days_until."""
    return [span.split("(")[0] for row in table_following(marker) for span in code_spans(row[0])]


def test_the_function_table_is_the_template_functions_of_the_code():
    documented = first_column_names("### Functions")
    assert len(documented) == len(set(documented))
    assert set(documented) == TEMPLATE_FUNCTIONS


def test_the_filter_table_is_the_template_filters_of_the_code():
    assert set(first_column_names("### Filters")) == TEMPLATE_FILTERS


def test_the_operator_table_is_the_operators_of_the_code():
    documented = first_column_names("### Operators")
    assert len(documented) == len(set(documented)) == len(Operator)
    assert set(documented) == {operator.value for operator in Operator}


def test_the_alias_table_is_the_short_spellings_the_parser_accepts():
    documented = {code_spans(alias)[0]: code_spans(name)[0] for alias, name in table_following("**Short")}
    assert documented == {alias: operator.value for alias, operator in OPERATOR_ALIASES.items()}


def test_the_case_paragraph_names_the_operators_ignore_case_applies_to():
    paragraph = TEXT[TEXT.index("**Case.**") :].split("\n\n")[0]
    named = set(code_spans(re.split(r"\scompare\s", paragraph)[0].split(" makes ")[1]))
    assert named == {operator.value for operator in CASE_OPERATORS}


def test_the_relative_value_table_is_the_relative_values_of_the_code():
    assert set(first_column_names("**Relative values**")) == RELATIVE_VALUES


def test_the_preset_table_gives_each_presets_name_and_description_as_the_catalog_does():
    rows = table_following("### Presets")
    documented = {code_spans(row[0])[0]: (row[1], row[2]) for row in rows}
    assert documented == {key: (preset.name, preset.description) for key, preset in PRESETS.items()}
    assert [code_spans(row[0])[0] for row in rows] == list(PRESETS)
