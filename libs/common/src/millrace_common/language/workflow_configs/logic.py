"""The logic and control node configs: condition, switch, for_each, wait_delay, set_variables and end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Literal

from pydantic import Field, JsonValue, field_validator, model_validator

from millrace_common.language.conditions import Condition
from millrace_common.language.templating import TEMPLATE_FILTERS, TEMPLATE_FUNCTIONS
from millrace_common.language.workflow_configs.base import (
    THIRTY_DAYS_SECONDS,
    JsonObject,
    NodeConfig,
    Path,
    VariableName,
    _Frozen,
    _invalid,
    _is_template,
)


class ConditionConfig(NodeConfig):
    literal_fields = frozenset({"condition"})

    condition: Condition

    def condition_trees(self) -> Iterator[tuple[Path, Condition, bool]]:
        yield ("condition",), self.condition, True


class SwitchCase(_Frozen):
    name: str = Field(min_length=1, max_length=100, pattern=r"\S")
    condition: Condition


class SwitchConfig(NodeConfig):
    """Cases are tried in order; the first that holds is taken, else ``default``."""

    literal_fields = frozenset({"cases"})

    cases: tuple[SwitchCase, ...] = Field(min_length=1, max_length=50)

    @field_validator("cases")
    @classmethod
    def _distinct_case_names(cls, value: tuple[SwitchCase, ...]) -> tuple[SwitchCase, ...]:
        names = [case.name for case in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise _invalid(f"case names must be distinct: {', '.join(map(repr, repeated))} repeats")
        return value

    def condition_trees(self) -> Iterator[tuple[Path, Condition, bool]]:
        for index, case in enumerate(self.cases):
            yield ("cases", index, "condition"), case.condition, True


RESERVED_NAMES = (
    frozenset(
        {"trigger", "workflow", "vars", "nodes", "index", "loop", "self", "true", "false", "none"}
        | {"True", "False", "None", "and", "or", "not", "in", "is", "if", "else", "for", "recursive"}
    )
    | TEMPLATE_FUNCTIONS
    | TEMPLATE_FILTERS
)
"""Names a loop's ``item_variable`` cannot take: the other roots of a template's context, the
template language's own words, functions and filters."""


class ForEachConfig(NodeConfig):
    """Runs its body (the nodes whose ``parentId`` is this node) once per item."""

    literal_fields = frozenset({"max_concurrency", "failure_policy", "item_variable"})

    items: str = Field(min_length=1, max_length=2000, pattern=r"(?s)^\s*\{\{.*\}\}\s*$")
    max_concurrency: int = Field(default=10, ge=1, le=100)
    failure_policy: Literal["fail", "skip", "collect"] = "fail"
    item_variable: str = Field(
        default="item",
        pattern=r"^[A-Za-z][A-Za-z0-9_]{0,63}$",
        description="The name the body's templates read the current item by (an inner loop's hides "
        "an outer loop's of the same name)",
    )

    @field_validator("item_variable")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise _invalid(f"item_variable {value!r} is a reserved name; choose another, e.g. 'row'")
        return value


class WaitDelayConfig(NodeConfig):
    duration_seconds: float | None = Field(default=None, gt=0, le=THIRTY_DAYS_SECONDS)
    until: str | None = Field(default=None, min_length=1, max_length=1000)

    @field_validator("until")
    @classmethod
    def _template_or_aware_datetime(cls, value: str | None) -> str | None:
        if value is None or _is_template(value):
            return value
        try:
            moment = datetime.fromisoformat(value)
        except ValueError as error:
            raise _invalid(
                "until is a template or an ISO 8601 date-time, e.g. 2026-01-31T09:00:00Z"
            ) from error
        if moment.tzinfo is None:
            raise _invalid("until needs a UTC offset, e.g. 2026-01-31T09:00:00+01:00")
        return value

    @model_validator(mode="after")
    def _exactly_one_wait(self) -> WaitDelayConfig:
        if (self.duration_seconds is None) == (self.until is None):
            raise _invalid("a wait_delay has exactly one of duration_seconds and until")
        return self


class SetVariablesConfig(NodeConfig):
    variables: dict[VariableName, JsonValue] = Field(min_length=1, max_length=100)


class EndConfig(NodeConfig):
    output: JsonObject | None = None
