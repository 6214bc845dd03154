"""The config of each node type (a node's ``data``), with the rules each config must follow.

Every config has a ``name`` and the shared execution policy (``retry``, ``timeout_seconds``,
``on_error``). Strings in a config are templates unless the config lists the field in
``literal_fields``; :meth:`NodeConfig.rendered_strings` yields the ones that are rendered.
``docs/node-reference.md`` describes every field.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Annotated, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from millrace_common.conditions import AllOf, AnyOf, Comparison, Condition, Negation, referenced_fields
from millrace_common.node_errors import RENAMED_ERROR_TYPES, RETRY_EVERY_TYPE, NodeErrorType

PipelineId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")]
CredentialName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.-]+$")]
VariableName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
ErrorType = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^(\*|[a-z][a-z0-9_]*)$")]
Title = Annotated[str, Field(min_length=1, max_length=500)]
JsonObject = dict[str, JsonValue]
Path = tuple[str | int, ...]

__all__ = [
    "CHECK_ERROR_TYPES",
    "AiAnalysisConfig",
    "AiClassificationConfig",
    "AiPromptConfig",
    "ApprovalConfig",
    "Assignee",
    "ConditionConfig",
    "CredentialName",
    "EndConfig",
    "ForEachConfig",
    "HttpAuth",
    "HttpRequestConfig",
    "NodeConfig",
    "PipelineId",
    "RecordCreateConfig",
    "RecordDeleteConfig",
    "RecordFindConfig",
    "RecordUpdateConfig",
    "RetryPolicy",
    "SetVariablesConfig",
    "SortKey",
    "SwitchCase",
    "SwitchConfig",
    "TaskNotifyConfig",
    "TriggerConfig",
    "TriggerKind",
    "WaitDelayConfig",
    "WatchedField",
    "WebhookOutConfig",
    "check_cron",
    "comparisons",
]

THIRTY_DAYS_SECONDS = 30 * 24 * 3600

# Validation context under which ``retry.retry_on`` may name only the error types in
# ``millrace_common.node_errors`` (validate_definition sets it: a submitted definition is checked, while a
# stored one, saved when any well-formed name was accepted, still loads).
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

    name: str = Field(min_length=1, max_length=200)
    retry: RetryPolicy | None = Field(
        default=None, description="This node's retry policy; null follows the workflow's retry_count"
    )
    timeout_seconds: float = Field(default=30, gt=0, le=3600)
    on_error: Literal["fail_run", "error_edge", "fallback"] = "fail_run"
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


# -- triggers ---------------------------------------------------------------------------------------

TriggerKind = Literal[
    "record_created", "record_updated", "record_deleted", "field_changed", "webhook", "scheduled", "manual"
]
RECORD_EVENT_KINDS = frozenset({"record_created", "record_updated", "record_deleted", "field_changed"})


class WatchedField(_Frozen):
    """A field whose change fires a ``field_changed`` trigger; ``from``/``to`` narrow it to changes
    from (to) one of the listed values. Absent or null means any value; ``[null]`` means empty."""

    field: str = Field(min_length=1, max_length=200)
    from_values: tuple[JsonValue, ...] | None = Field(
        default=None, alias="from", min_length=1, max_length=100
    )
    to_values: tuple[JsonValue, ...] | None = Field(default=None, alias="to", min_length=1, max_length=100)


class TriggerConfig(NodeConfig):
    literal_fields = frozenset(
        {
            "kind",
            "pipeline_ids",
            "conditions",
            "fields",
            "require_signature",
            "secret_credential",
            "cron",
            "timezone",
            "missed_slot_policy",
        }
    )

    kind: TriggerKind
    pipeline_ids: tuple[PipelineId, ...] = Field(default=(), max_length=100, validate_default=True)
    conditions: Condition | None = None
    fields: tuple[WatchedField, ...] = Field(default=(), max_length=100, validate_default=True)
    require_signature: bool = False
    secret_credential: CredentialName | None = Field(default=None, validate_default=True)
    cron: str | None = Field(default=None, max_length=200, validate_default=True)
    timezone: str = Field(default="UTC", max_length=64)
    missed_slot_policy: Literal["fire_once", "skip"] = "fire_once"

    @field_validator("pipeline_ids")
    @classmethod
    def _pipelines_for_record_kinds(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        kind = info.data.get("kind")
        if value and kind is not None and kind not in RECORD_EVENT_KINDS:
            raise _invalid(f"pipeline_ids only apply to record triggers, not to {kind!r}")
        if len(set(value)) != len(value):
            raise _invalid("pipeline_ids lists a pipeline twice")
        return value

    @field_validator("fields")
    @classmethod
    def _fields_for_field_changed(
        cls, value: tuple[WatchedField, ...], info: ValidationInfo
    ) -> tuple[WatchedField, ...]:
        kind = info.data.get("kind")
        if kind == "field_changed" and not value:
            raise _invalid('a "field_changed" trigger watches at least one field')
        if kind is not None and kind != "field_changed" and value:
            raise _invalid('fields only apply to "field_changed" triggers')
        names = [watched.field for watched in value]
        if len(set(names)) != len(names):
            raise _invalid("fields lists a field twice")
        return value

    @field_validator("secret_credential")
    @classmethod
    def _secret_for_signed_webhooks(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind is not None and kind != "webhook" and value is not None:
            raise _invalid('secret_credential only applies to "webhook" triggers')
        if kind == "webhook" and info.data.get("require_signature") and value is None:
            raise _invalid("a webhook that requires a signature needs the secret_credential to check it with")
        return value

    @field_validator("cron")
    @classmethod
    def _cron_for_schedules(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "scheduled" and value is None:
            raise _invalid('a "scheduled" trigger needs a cron expression')
        if kind is not None and kind != "scheduled" and value is not None:
            raise _invalid('cron only applies to "scheduled" triggers')
        if value is not None:
            check_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise _invalid(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from error
        return value

    def condition_trees(self) -> Iterator[tuple[Path, Condition, bool]]:
        if self.conditions is not None:
            yield ("conditions",), self.conditions, True


_CRON_MACROS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"})
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
    )
}
_WEEKDAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_CRON_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _WEEKDAYS),
)


def check_cron(expression: str) -> None:
    """Raise ``PydanticCustomError`` unless ``expression`` is a five-field cron expression or a macro."""
    if expression.strip().lower() in _CRON_MACROS:
        return
    parts = expression.split()
    if len(parts) != len(_CRON_FIELDS):
        raise _invalid("a cron expression has five fields: minute hour day-of-month month day-of-week")
    for part, (label, low, high, names) in zip(parts, _CRON_FIELDS, strict=True):
        for item in part.split(","):
            if not _cron_item_is_valid(item, low, high, names):
                raise _invalid(
                    f"cron {label} field {part!r} is not valid (allowed {low}-{high}, *, ranges, /steps)"
                )


def _cron_item_is_valid(item: str, low: int, high: int, names: Mapping[str, int]) -> bool:
    base, slash, step = item.partition("/")
    if slash and not (step.isdigit() and 1 <= int(step) <= high):
        return False
    if base == "*":
        return True
    start, dash, end = base.partition("-")
    values = [_cron_value(start, names), *([_cron_value(end, names)] if dash else [])]
    if any(value is None or not low <= value <= high for value in values):
        return False
    return not dash or values[0] <= values[1]  # type: ignore[operator]


def _cron_value(text: str, names: Mapping[str, int]) -> int | None:
    if text.isdigit():
        return int(text)
    return names.get(text.upper())


# -- AI ---------------------------------------------------------------------------------------------


class _AiConfig(NodeConfig):
    """Model, temperature and token limit default to the tenant's AI settings."""

    literal_fields = frozenset({"model", "temperature", "max_tokens"})

    system: str | None = Field(default=None, max_length=65_536)
    model: str | None = Field(default=None, min_length=1, max_length=200)
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=1, le=200_000)


class AiPromptConfig(_AiConfig):
    prompt: str = Field(min_length=1, max_length=65_536)


class AiAnalysisConfig(_AiConfig):
    literal_fields = _AiConfig.literal_fields | {"output_schema"}

    prompt: str = Field(min_length=1, max_length=65_536)
    output_schema: JsonObject

    @field_validator("output_schema")
    @classmethod
    def _object_schema(cls, value: JsonObject) -> JsonObject:
        if value.get("type") != "object":
            raise _invalid('output_schema must describe an object: {"type": "object", "properties": {...}}')
        problem = _schema_problem(value, "output_schema")
        if problem is not None:
            raise _invalid(problem)
        if not value.get("properties"):
            raise _invalid("output_schema needs at least one property")
        return value


_JSON_SCHEMA_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def _schema_problem(schema: JsonValue, where: str) -> str | None:
    """The first reason ``schema`` is not a usable JSON Schema (the subset models answer with), or None."""
    if not isinstance(schema, dict):
        return f"{where} must be a JSON Schema object"
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared is not None else []
    if not all(isinstance(t, str) and t in _JSON_SCHEMA_TYPES for t in types):
        return f"{where}.type must be one of {', '.join(sorted(_JSON_SCHEMA_TYPES))}"
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        return f"{where}.properties must be an object of schemas"
    for name, sub in properties.items():
        if (problem := _schema_problem(sub, f"{where}.properties.{name}")) is not None:
            return problem
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(r, str) and r in properties for r in required):
        return f"{where}.required must list names of its properties"
    if "items" in schema and (problem := _schema_problem(schema["items"], f"{where}.items")) is not None:
        return problem
    enum = schema.get("enum")
    if enum is not None and (not isinstance(enum, list) or not enum):
        return f"{where}.enum must be a non-empty list"
    return None


class AiClassificationConfig(_AiConfig):
    literal_fields = _AiConfig.literal_fields | {"labels"}

    text: str = Field(min_length=1, max_length=65_536)
    prompt: str | None = Field(default=None, max_length=65_536)
    labels: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = Field(
        min_length=2, max_length=50
    )

    @field_validator("labels")
    @classmethod
    def _distinct_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not label.strip() for label in value):
            raise _invalid("a label cannot be blank")
        folded = [label.strip().casefold() for label in value]
        if len(set(folded)) != len(folded):
            raise _invalid("labels must be distinct (compared ignoring case and surrounding spaces)")
        return value


# -- records ----------------------------------------------------------------------------------------


class RecordCreateConfig(NodeConfig):
    literal_fields = frozenset({"pipeline_id"})

    pipeline_id: PipelineId
    data: JsonObject


class RecordUpdateConfig(NodeConfig):
    literal_fields = frozenset({"pipeline_id", "mode"})

    pipeline_id: PipelineId
    record_id: str = Field(min_length=1, max_length=1000)
    data: JsonObject
    mode: Literal["merge", "replace"] = "merge"


class SortKey(_Frozen):
    field: str = Field(min_length=1, max_length=200)
    direction: Literal["asc", "desc"] = "asc"


class RecordFindConfig(NodeConfig):
    literal_fields = frozenset({"pipeline_id", "filters", "sort", "limit"})

    pipeline_id: PipelineId
    filters: Condition | None = None
    sort: tuple[SortKey, ...] = Field(default=(), max_length=5)
    limit: int = Field(default=100, ge=1, le=1000)

    def condition_trees(self) -> Iterator[tuple[Path, Condition, bool]]:
        if self.filters is not None:
            yield ("filters",), self.filters, False


class RecordDeleteConfig(NodeConfig):
    literal_fields = frozenset({"pipeline_id"})

    pipeline_id: PipelineId
    record_id: str = Field(min_length=1, max_length=1000)


# -- logic ------------------------------------------------------------------------------------------


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


class ForEachConfig(NodeConfig):
    """Runs its body (the nodes whose ``parentId`` is this node) once per item."""

    literal_fields = frozenset({"max_concurrency", "failure_policy"})

    items: str = Field(min_length=1, max_length=2000, pattern=r"(?s)^\s*\{\{.*\}\}\s*$")
    max_concurrency: int = Field(default=10, ge=1, le=100)
    failure_policy: Literal["fail", "skip", "collect"] = "fail"


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


# -- external ---------------------------------------------------------------------------------------

Url = Annotated[str, Field(min_length=1, max_length=4096, pattern=r"^(https?://|\{\{)")]


class HttpAuth(_Frozen):
    """A named tenant credential of the same kind; ``header`` credentials carry their header name."""

    type: Literal["bearer", "basic", "header"]
    credential: CredentialName


class HttpRequestConfig(NodeConfig):
    literal_fields = frozenset({"method", "auth", "body_type", "response_cap_bytes"})

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    url: Url
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str] = Field(default_factory=dict)
    auth: HttpAuth | None = None
    body_type: Literal["json", "form", "raw"] = "json"
    body: JsonValue = Field(default=None, validate_default=True)
    response_cap_bytes: int = Field(default=1024 * 1024, ge=1, le=10 * 1024 * 1024)

    @field_validator("body")
    @classmethod
    def _body_fits_its_type(cls, value: JsonValue, info: ValidationInfo) -> JsonValue:
        body_type = info.data.get("body_type")
        if value is None:
            return value
        if body_type == "form" and not (
            isinstance(value, dict) and all(isinstance(v, str | int | float | bool) for v in value.values())
        ):
            raise _invalid("a form body is an object of scalar values")
        if body_type == "raw" and not isinstance(value, str):
            raise _invalid("a raw body is a string")
        return value


class WebhookOutConfig(NodeConfig):
    """A POST of ``payload`` as JSON, signed with HMAC-SHA256 when ``secret_credential`` is set."""

    literal_fields = frozenset({"secret_credential", "response_cap_bytes"})

    url: Url
    payload: JsonValue = None
    headers: dict[str, str] = Field(default_factory=dict)
    secret_credential: CredentialName | None = None
    response_cap_bytes: int = Field(default=1024 * 1024, ge=1, le=10 * 1024 * 1024)


# -- human ------------------------------------------------------------------------------------------


class Assignee(_Frozen):
    """Exactly one of a user or a role."""

    user: str | None = Field(default=None, min_length=1, max_length=320)
    role: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _user_or_role(self) -> Assignee:
        if (self.user is None) == (self.role is None):
            raise _invalid('an assignee is {"user": ...} or {"role": ...}')
        return self


class ApprovalConfig(NodeConfig):
    literal_fields = frozenset({"on_deadline", "quorum", "allow_self_approval"})

    assignee: Assignee
    title: Title
    description: str = Field(default="", max_length=65_536)
    deadline_seconds: int | None = Field(default=None, gt=0, le=THIRTY_DAYS_SECONDS)
    on_deadline: Literal["escalate", "timeout"] = "timeout"
    escalate_to: Assignee | None = Field(default=None, validate_default=True)
    quorum: int = Field(default=1, ge=1, le=100, validate_default=True)
    allow_self_approval: bool = False

    @field_validator("escalate_to")
    @classmethod
    def _escalation_has_a_target(cls, value: Assignee | None, info: ValidationInfo) -> Assignee | None:
        on_deadline = info.data.get("on_deadline")
        if on_deadline == "escalate" and value is None:
            raise _invalid('on_deadline "escalate" needs escalate_to')
        if (
            on_deadline == "escalate"
            and "deadline_seconds" in info.data
            and info.data["deadline_seconds"] is None
        ):
            raise _invalid('on_deadline "escalate" needs deadline_seconds')
        if on_deadline == "timeout" and value is not None:
            raise _invalid('escalate_to is only used when on_deadline is "escalate"')
        return value

    @field_validator("quorum")
    @classmethod
    def _quorum_needs_a_role(cls, value: int, info: ValidationInfo) -> int:
        assignee = info.data.get("assignee")
        if value > 1 and assignee is not None and assignee.role is None:
            raise _invalid("a quorum above 1 needs a role assignee; one user approves once")
        return value


class TaskNotifyConfig(NodeConfig):
    assignee: Assignee
    title: Title
    message: str = Field(default="", max_length=65_536)
