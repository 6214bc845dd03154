"""The AI usage report's rules: which month (UTC) and which grouping a query asks for, and how much of
the monthly budget is left. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from uuid import UUID

from millrace_common.platform.refusals import FieldProblem, Refused

MAX_ROWS = 1000
"""Rows one report answers, the largest first: a month of a tenant with hundreds of AI workflows fits,
and a report cannot grow without bound with the tenant's node count."""

_MONTH = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True)
class ModelPrice:
    """What the tenant pays for a model's tokens, per million, in the tenant's price currency."""

    prompt_per_million: float
    completion_per_million: float


@dataclass(frozen=True)
class UsageRow:
    """Tokens, calls and cost of one group; a dimension the report is not grouped by is None, and so
    is the workflow of calls recorded before calls named their workflow."""

    workflow_id: UUID | None
    workflow_name: str | None
    node_id: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    calls: int
    cost: Decimal | None
    """Of the tokens whose model has a price; None when none has."""
    unpriced_tokens: int


class Dimension(StrEnum):
    """What usage can be grouped by."""

    WORKFLOW = "workflow"
    NODE = "node"
    MODEL = "model"


EVERY_DIMENSION = (Dimension.WORKFLOW, Dimension.NODE, Dimension.MODEL)


class InvalidUsageQuery(Refused):
    status = 422
    code = "invalid_request"

    def __init__(self, parameter: str, detail: str) -> None:
        super().__init__("the request is not valid", FieldProblem(f"/query/{parameter}", detail))


def month_asked(text: str | None, *, today: date) -> date:
    """The first day of the month ``YYYY-MM`` names; this month (of ``today``) without one."""
    if text is None:
        return today.replace(day=1)
    matched = _MONTH.fullmatch(text)
    # 9999 is left out: its December would end in a year Python's dates do not have.
    if matched is None or not 1 <= int(matched[2]) <= 12 or not 1 <= int(matched[1]) <= 9998:
        raise InvalidUsageQuery("month", f"{text!r} is not a month from 0001-01 to 9998-12: give YYYY-MM")
    return date(int(matched[1]), int(matched[2]), 1)


def month_after(month: date) -> date:
    return date(month.year + 1, 1, 1) if month.month == 12 else date(month.year, month.month + 1, 1)


def grouping_asked(text: str | None) -> tuple[Dimension, ...]:
    """The dimensions a comma-separated ``group_by`` names, in the order of :data:`EVERY_DIMENSION`
    (so a row reads workflow, node, model whatever order they were asked in); all three without one."""
    if text is None:
        return EVERY_DIMENSION
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in set(Dimension)]
    if unknown or not names:
        raise InvalidUsageQuery(
            "group_by",
            f"{', '.join(repr(n) for n in unknown)} cannot be grouped by: "
            "give one or more of workflow, node, model, comma separated",
        )
    return tuple(d for d in EVERY_DIMENSION if d.value in names)


def budget_left(monthly_token_budget: int | None, used: int) -> int | None:
    """Tokens the month still allows (never below zero: a call that started under the budget may end
    over it); None without a budget."""
    return None if monthly_token_budget is None else max(monthly_token_budget - used, 0)
