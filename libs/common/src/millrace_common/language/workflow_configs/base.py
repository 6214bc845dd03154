"""What every node config shares: the field types, the frozen base model, the execution policy
(``retry``, ``timeout_seconds``, ``on_error``) and the walk over templates and condition trees."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.node_errors import RENAMED_ERROR_TYPES, RETRY_EVERY_TYPE, NodeErrorType
from millrace_common.language.conditions import (
    AllOf,
    AnyOf,
    Comparison,
    Condition,
    Negation,
    referenced_fields,
)
from millrace_common.language.templating import has_template, render_value

PipelineId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
CredentialName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
VariableName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ErrorType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^(\*|[a-z][a-z0-9_]*)$")]
Title = Annotated[str, Field(min_length=1, max_length=500)]
KafkaTopicName = Annotated[str, Field(min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$")]
"""A Kafka topic's name as the broker allows it (1-249 of letters, digits, ``.``, ``_``, ``-``)."""
Path = tuple[str | int, ...]

THIRTY_DAYS_SECONDS = 30 * 24 * 3600

# Validation context under which ``retry.retry_on`` may name only the error types in
# ``millrace_common.contracts.node_errors`` (validate_definition sets it: a submitted definition is
# checked, while a stored one, saved when any well-formed name was accepted, still loads).
CHECK_ERROR_TYPES = "millrace.workflow.check_error_types"


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid_config", message)


def _is_template(value: str) -> bool:
    return "{{" in value or "{%" in value or "{#" in value


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# -- the execution policy every node shares -------------------------------------------------------


class RetryPolicy(_Frozen):
    """Attempt ``k + 1`` waits ``min(backoff_seconds * backoff_multiplier ** (k - 1), max_backoff_seconds)``
    (jittered); an error is retried only if the runner marks it retryable and its type is listed."""

    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff_seconds: float = Field(default=1, gt=0, le=3600)
    backoff_multiplier: float = Field(default=2, ge=1, le=10)
    max_backoff_seconds: float = Field(default=300, gt=0, le=86_400, validate_default=True)
    retry_on: tuple[ErrorType, ...] = Field(default=("*",), min_length=1, max_length=50)

    @field_validator("max_backoff_seconds")
    @classmethod
    def _not_below_initial(cls, value: float, info: ValidationInfo) -> float:
        initial = info.data.get("backoff_seconds")
        if initial is not None and value < initial:
            raise _invalid(f"max_backoff_seconds ({value:g}) is below backoff_seconds ({initial:g})")
        return value

    @field_validator("retry_on")
    @classmethod
    def _wildcard_alone_and_unique(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        if RETRY_EVERY_TYPE in value and len(value) > 1:
            raise _invalid('"*" retries every retryable error and stands alone')
        if len(set(value)) != len(value):
            raise _invalid("retry_on lists an error type twice")
        if info.context and info.context.get(CHECK_ERROR_TYPES):
            for name in value:
                if name in RENAMED_ERROR_TYPES:
                    raise _invalid(
                        f"the error type {name!r} is now called {str(RENAMED_ERROR_TYPES[name])!r}"
                    )
                if name != RETRY_EVERY_TYPE and name not in _ERROR_TYPE_NAMES:
                    known = ", ".join(sorted(_ERROR_TYPE_NAMES))
                    raise _invalid(f'{name!r} is not an error type; the error types are {known}, or "*"')
        return value


_ERROR_TYPE_NAMES = frozenset(t.value for t in NodeErrorType)


class NodeConfig(_Frozen):
    """What every node's ``data`` has: its label and how it is executed."""

    literal_fields: ClassVar[frozenset[str]] = frozenset()
    wants_context: ClassVar[bool] = False
    """Whether the runner is given the whole template context (``input.context``), not only the
    rendered config."""

    name: str = Field(min_length=1, max_length=200)
    retry: RetryPolicy | None = Field(
        default=None, description="This node's retry policy; null follows the workflow's retry_count"
    )
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    on_error: Literal["fail_run", "error_edge", "fallback", "pause"] = "fail_run"
    fallback_output: JsonObject | None = Field(default=None, validate_default=True)

    @field_validator("fallback_output")
    @classmethod
    def _fallback_goes_with_its_policy(
        cls, value: JsonObject | None, info: ValidationInfo
    ) -> JsonObject | None:
        on_error = info.data.get("on_error")
        if on_error == "fallback" and value is None:
            raise _invalid('on_error "fallback" needs a fallback_output object')
        if on_error is not None and on_error != "fallback" and value is not None:
            raise _invalid('fallback_output is only used when on_error is "fallback"')
        return value

    def runner_input(
        self,
        context: Callable[[], Mapping[str, JsonValue]],
        *,
        now: datetime,
        new_id: Callable[[], UUID],
    ) -> JsonObject:
        """The input a runner is sent for this node, in a run or in a node test: the config without
        its policy fields, each field that holds a template rendered, the literal fields and the plain
        values as written, and the whole context for a type that :attr:`wants_context`. ``context``
        is asked once, and only when something needs it (a node of plain values renders nothing).
        Raises ``TemplateError`` for a field that cannot render."""
        config = self.model_dump(mode="json", by_alias=True)
        literal = _POLICY_FIELDS | self.literal_fields
        seen: Mapping[str, JsonValue] | None = None
        rendered: JsonObject = {}
        for name, value in config.items():
            if name == "name":
                continue
            if name in literal or not has_template(value):
                rendered[name] = value
                continue
            if seen is None:
                seen = context()
            rendered[name] = render_value(value, seen, now=now, new_id=new_id)
        if self.wants_context:  # the code node: its function reads the context itself
            rendered["context"] = dict(seen if seen is not None else context())
        return rendered

    def rendered_strings(self) -> Iterator[tuple[Path, str]]:
        """Every string the orchestrator renders as a template, with its path inside ``data``:
        the fields not in ``literal_fields``, and the values compared with in condition trees."""
        skipped = _POLICY_FIELDS | self.literal_fields
        dumped = self.model_dump(mode="json", by_alias=True)
        for field_name, field in type(self).model_fields.items():
            if field_name not in skipped:
                key = field.alias or field_name
                yield from _strings((key,), dumped[key])
        for path, tree, _ in self.condition_trees():
            for leaf_path, leaf in comparisons(path, tree):
                yield from _strings((*leaf_path, "value"), leaf.value)
                yield from _strings((*leaf_path, "value_to"), leaf.value_to)

    def condition_trees(self) -> Iterator[tuple[Path, Condition, bool]]:
        """The condition trees in this config: path inside ``data``, tree, and whether its fields
        are paths into the run's data (``trigger...``, ``nodes...``) rather than a record's fields."""
        return iter(())

    def condition_references(self) -> Iterator[tuple[Path, frozenset[tuple[str, ...]]]]:
        """The run data each condition tree over the run's data reads."""
        for path, tree, over_run_data in self.condition_trees():
            if over_run_data:
                yield path, referenced_fields(tree)


_POLICY_FIELDS = frozenset(NodeConfig.model_fields)


def comparisons(path: Path, tree: Condition) -> Iterator[tuple[Path, Comparison]]:
    """The leaves of a condition tree with their JSON paths (``and``/``or`` lists, ``not``)."""
    if isinstance(tree, Comparison):
        yield path, tree
    elif isinstance(tree, AllOf):
        for index, child in enumerate(tree.all):
            yield from comparisons((*path, "and", index), child)
    elif isinstance(tree, AnyOf):
        for index, child in enumerate(tree.any):
            yield from comparisons((*path, "or", index), child)
    elif isinstance(tree, Negation):
        yield from comparisons((*path, "not"), tree.condition)


def _strings(path: Path, value: JsonValue) -> Iterator[tuple[Path, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings((*path, index), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings((*path, key), item)
