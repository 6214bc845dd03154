"""The condition tree: a :class:`Comparison` leaf (field, :class:`Operator`, value), combined by
``{"and": [...]}`` (:class:`AllOf`), ``{"or": [...]}`` (:class:`AnyOf`) and ``{"not": {...}}``
(:class:`Negation`), parsed from JSON into the :data:`Condition` union, at most :data:`MAX_DEPTH` deep."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    TypeAdapter,
    field_validator,
    model_validator,
)

from millrace_common.language import dates

MAX_DEPTH = 32
MAX_FIELD_CHARS = 500


class Operator(StrEnum):
    """How a field's value is compared with a condition's value."""

    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    GREATER_THAN = "greater_than"
    GREATER_THAN_OR_EQUALS = "greater_than_or_equals"
    LESS_THAN = "less_than"
    LESS_THAN_OR_EQUALS = "less_than_or_equals"
    CONTAINS = "contains"
    NOT_CONTAINS = "not_contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    IS_EMPTY = "is_empty"
    IS_NOT_EMPTY = "is_not_empty"
    IN = "in"
    NOT_IN = "not_in"
    MATCHES = "matches"
    BEFORE = "before"
    AFTER = "after"
    BETWEEN = "between"
    LENGTH_EQUALS = "length_equals"
    LENGTH_GREATER_THAN = "length_greater_than"
    LENGTH_LESS_THAN = "length_less_than"


OPERATOR_ALIASES: Mapping[str, Operator] = MappingProxyType(
    {
        "==": Operator.EQUALS,
        "!=": Operator.NOT_EQUALS,
        ">": Operator.GREATER_THAN,
        ">=": Operator.GREATER_THAN_OR_EQUALS,
        "<": Operator.LESS_THAN,
        "<=": Operator.LESS_THAN_OR_EQUALS,
    }
)
"""The short spellings accepted for the named operators; a condition is stored with the named one."""

CASE_OPERATORS = frozenset(
    {Operator.CONTAINS, Operator.NOT_CONTAINS, Operator.STARTS_WITH, Operator.ENDS_WITH}
)
"""The operators ``ignore_case`` applies to."""


class Comparison(BaseModel):
    """One test: the value at ``field`` compared with ``value`` (and ``value_to``, for ``between``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    field: str = Field(min_length=1, max_length=MAX_FIELD_CHARS)
    operator: Operator
    value: JsonValue = None
    value_to: JsonValue = None
    # Left out of a dump while unused, so conditions stored before these options read back unchanged.
    ignore_case: bool = Field(
        default=False,
        exclude_if=lambda ignore_case: not ignore_case,
        description="contains, not_contains, starts_with and ends_with compare text regardless of case",
    )
    time_zone: str | None = Field(
        default=None,
        exclude_if=lambda time_zone: time_zone is None,
        max_length=64,
        description="The IANA zone relative values ('today', 'start_of_week', '+1d') and dates without a "
        "time are read in; UTC when not given",
    )

    @field_validator("operator", mode="before")
    @classmethod
    def _named_operator(cls, operator: object) -> object:
        return OPERATOR_ALIASES.get(operator, operator) if isinstance(operator, str) else operator

    @model_validator(mode="after")
    def _case_applies(self) -> Comparison:
        if self.ignore_case and self.operator not in CASE_OPERATORS:
            names = ", ".join(sorted(CASE_OPERATORS))
            raise ValueError(f"ignore_case applies to {names}, not to {self.operator}")
        return self

    @field_validator("time_zone")
    @classmethod
    def _is_a_known_zone(cls, time_zone: str | None) -> str | None:
        if time_zone is not None:
            try:
                dates.zone(time_zone)
            except dates.DateValueError as error:
                raise ValueError(str(error)) from None
        return time_zone

    @field_validator("field")
    @classmethod
    def _is_a_dotted_path(cls, field: str) -> str:
        if any(not part.strip() for part in field.split(".")):
            raise ValueError(f"'{field}' is not a dotted path like 'trigger.record.data.amount'")
        return field


_GROUP = ConfigDict(
    frozen=True, extra="forbid", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
)


class AllOf(BaseModel):
    """True when every condition is (an empty list is true); serialised as ``{"and": [...]}``."""

    model_config = _GROUP

    all: tuple[Condition, ...] = Field(validation_alias=AliasChoices("and", "all"), serialization_alias="and")

    @model_validator(mode="after")
    def _within_depth(self) -> AllOf:
        _check_depth(self)
        return self


class AnyOf(BaseModel):
    """True when at least one condition is (an empty list is false); serialised as ``{"or": [...]}``."""

    model_config = _GROUP

    any: tuple[Condition, ...] = Field(validation_alias=AliasChoices("or", "any"), serialization_alias="or")

    @model_validator(mode="after")
    def _within_depth(self) -> AnyOf:
        _check_depth(self)
        return self


class Negation(BaseModel):
    """True when the condition is false; serialised as ``{"not": {...}}``."""

    model_config = _GROUP

    condition: Condition = Field(validation_alias=AliasChoices("not", "condition"), serialization_alias="not")

    @model_validator(mode="after")
    def _within_depth(self) -> Negation:
        _check_depth(self)
        return self


def _condition_kind(value: object) -> str | None:
    if isinstance(value, Mapping):
        for kind, keys in (("and", ("and", "all")), ("or", ("or", "any")), ("not", ("not", "condition"))):
            if any(key in value for key in keys):
                return kind
        return "comparison"
    kinds: dict[type, str] = {Comparison: "comparison", AllOf: "and", AnyOf: "or", Negation: "not"}
    return kinds.get(type(value))


Condition = Annotated[
    Annotated[Comparison, Tag("comparison")]
    | Annotated[AllOf, Tag("and")]
    | Annotated[AnyOf, Tag("or")]
    | Annotated[Negation, Tag("not")],
    Discriminator(
        _condition_kind,
        custom_error_type="invalid_condition",
        custom_error_message=(
            "a condition is an object with 'field' and 'operator', or with 'and', 'or' or 'not'"
        ),
    ),
]

for _group in (AllOf, AnyOf, Negation):
    _group.model_rebuild()


@functools.cache
def _condition_adapter() -> TypeAdapter[Condition]:
    return TypeAdapter(Condition, config=ConfigDict(title="Condition"))


def parse_condition(data: JsonValue) -> Condition:
    """Validate JSON (``{"field": ..., "operator": ...}`` or ``{"and"|"or"|"not": ...}``) into a condition.

    Raises :class:`pydantic.ValidationError`, e.g. for an unknown operator (the message lists the allowed
    ones) or a tree deeper than :data:`MAX_DEPTH`.
    """
    return _condition_adapter().validate_python(data)


def _depth(condition: Condition) -> int:
    if isinstance(condition, AllOf):
        return 1 + max((_depth(child) for child in condition.all), default=0)
    if isinstance(condition, AnyOf):
        return 1 + max((_depth(child) for child in condition.any), default=0)
    if isinstance(condition, Negation):
        return 1 + _depth(condition.condition)
    return 1


def _check_depth(condition: Condition) -> None:
    if _depth(condition) > MAX_DEPTH:
        raise ValueError(f"conditions may be nested at most {MAX_DEPTH} levels deep")


def referenced_fields(condition: Condition) -> frozenset[tuple[str, ...]]:
    """Every field path the condition reads, split on dots: ``("trigger", "record", "data", "amount")``."""
    if isinstance(condition, Comparison):
        return frozenset({tuple(condition.field.split("."))})
    if isinstance(condition, Negation):
        return referenced_fields(condition.condition)
    children = condition.all if isinstance(condition, AllOf) else condition.any
    return frozenset().union(*(referenced_fields(child) for child in children))
