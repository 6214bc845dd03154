"""Conditions: boolean trees over a run's data, used by condition nodes, switch cases and trigger filters.

A leaf compares the value at a dotted path of the context (``trigger.record.data.amount``,
``items.0.name``) with a literal using one :class:`Operator`; ``{"and": [...]}``, ``{"or": [...]}`` and
``{"not": {...}}`` combine them. Evaluation is pure and typed: numbers compare with numbers, dates with
dates, text with text, and anything else is a :class:`ConditionError` that names both sides.

A field that is missing reads as null. Null is "no value": it is empty, it equals only null, and it never
satisfies an ordering, text, pattern or length test (so ``not_contains`` and ``not_in`` hold for it).

``model`` holds the tree and its parsing, ``evaluation`` the evaluation and the operators, ``presets``
the ready-made conditions. Import the names from this package.
"""

from __future__ import annotations

from millrace_common.language.conditions.evaluation import RELATIVE_VALUES, ConditionError, evaluate
from millrace_common.language.conditions.model import (
    CASE_OPERATORS,
    MAX_DEPTH,
    OPERATOR_ALIASES,
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Negation,
    Operator,
    parse_condition,
    referenced_fields,
)
from millrace_common.language.conditions.presets import PRESETS, Preset

__all__ = [
    "CASE_OPERATORS",
    "MAX_DEPTH",
    "OPERATOR_ALIASES",
    "PRESETS",
    "RELATIVE_VALUES",
    "AllOf",
    "AnyOf",
    "Comparison",
    "Condition",
    "ConditionError",
    "Negation",
    "Operator",
    "Preset",
    "evaluate",
    "parse_condition",
    "referenced_fields",
]
