"""The trigger node's config: record events, webhooks, schedules (and their cron check) and manual starts.

A scheduled trigger has a list of named schedules (``schedules``), each a cron expression in a time
zone or an interval (``every`` N ``unit``); a definition saved before there were several keeps its one
``cron`` (with ``timezone`` and ``missed_slot_policy``) at the top level, read as one schedule named
:data:`LEGACY_SCHEDULE_NAME` (:meth:`TriggerConfig.schedule_list` gives either shape as the list)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, JsonValue, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from millrace_common.language.conditions import Condition
from millrace_common.language.input_schema import check_input_schema
from millrace_common.language.workflow_configs.base import (
    CredentialName,
    KafkaTopicName,
    NodeConfig,
    Path,
    PipelineId,
    _Frozen,
    _invalid,
)

TriggerKind = Literal[
    "record_created",
    "record_updated",
    "record_deleted",
    "field_changed",
    "webhook",
    "scheduled",
    "manual",
    "kafka",
]
RECORD_EVENT_KINDS = frozenset({"record_created", "record_updated", "record_deleted", "field_changed"})
ANY_PIPELINE = "*"
"""The pipeline a record trigger without ``pipeline_ids`` is indexed under: it matches every pipeline."""


class WatchedField(_Frozen):
    """A field whose change fires a ``field_changed`` trigger; ``from``/``to`` narrow it to changes
    from (to) one of the listed values. Absent or null means any value; ``[null]`` means empty."""

    field: str = Field(min_length=1, max_length=200)
    from_values: tuple[JsonValue, ...] | None = Field(
        default=None, alias="from", min_length=1, max_length=100
    )
    to_values: tuple[JsonValue, ...] | None = Field(default=None, alias="to", min_length=1, max_length=100)


LEGACY_SCHEDULE_NAME = "default"
"""The name of the one schedule of a trigger written with a top-level ``cron``."""
MAX_SCHEDULES = 20
INTERVAL_UNITS: Mapping[str, int] = {"seconds": 1, "minutes": 60, "hours": 3600}
MAX_INTERVAL_SECONDS = 31 * 24 * 3600
MissedSlotPolicy = Literal["fire_once", "skip"]


class Schedule(_Frozen):
    """One named schedule of a scheduled trigger: a cron expression in a time zone, or an interval
    (every ``every`` ``unit``, aligned to the Unix epoch: every 15 minutes is :00, :15, :30, :45)."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    cron: str | None = Field(default=None, max_length=200)
    every: int | None = Field(default=None, ge=1, le=MAX_INTERVAL_SECONDS)
    unit: Literal["seconds", "minutes", "hours"] = "minutes"
    timezone: str = Field(default="UTC", max_length=64)
    missed_slot_policy: MissedSlotPolicy = "fire_once"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str | None) -> str | None:
        if value is not None:
            check_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @model_validator(mode="after")
    def _cron_or_interval(self) -> Schedule:
        if (self.cron is None) == (self.every is None):
            raise _invalid(f"schedule {self.name!r} has exactly one of cron and every")
        if self.every is not None and self.interval_seconds > MAX_INTERVAL_SECONDS:
            raise _invalid(f"schedule {self.name!r} repeats less often than every 31 days; use cron")
        return self

    @property
    def kind(self) -> Literal["cron", "interval"]:
        return "cron" if self.cron is not None else "interval"

    @property
    def interval_seconds(self) -> int:
        """The interval in seconds (0 for a cron schedule)."""
        return (self.every or 0) * INTERVAL_UNITS[self.unit]


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise _invalid(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)") from error
    return value


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
            "schedules",
            "input_schema",
            "topic",
            "start_from",
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
    missed_slot_policy: MissedSlotPolicy = "fire_once"
    schedules: tuple[Schedule, ...] = Field(default=(), max_length=MAX_SCHEDULES, validate_default=True)
    input_schema: dict[str, JsonValue] | None = Field(
        default=None,
        description="A manual trigger's input, as a JSON Schema: the Run dialog builds its form from it, "
        "and manual runs and sub_workflow nodes are refused input that does not match it",
    )

    @field_validator("input_schema")
    @classmethod
    def _valid_input_schema(
        cls, value: dict[str, JsonValue] | None, info: ValidationInfo
    ) -> dict[str, JsonValue] | None:
        if value is None:
            return value
        if info.data.get("kind") != "manual":
            raise _invalid('input_schema only applies to "manual" triggers')
        try:
            check_input_schema(value)
        except ValueError as error:
            # Passed as context: a schema's braces in the message are not a template to format.
            raise PydanticCustomError("invalid_config", "{reason}", {"reason": str(error)}) from None
        return value

    topic: KafkaTopicName | None = Field(default=None, validate_default=True)
    """A ``kafka`` trigger's topic: one the tenant was granted to consume (checked on saving)."""
    start_from: Literal["latest", "earliest"] = "latest"
    """A ``kafka`` trigger's first message: ``latest``, those written from its activation on;
    ``earliest``, every message the topic still holds."""

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
        if kind is not None and kind != "scheduled" and value is not None:
            raise _invalid('cron only applies to "scheduled" triggers')
        if value is not None:
            check_cron(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("schedules")
    @classmethod
    def _schedules_for_scheduled(
        cls, value: tuple[Schedule, ...], info: ValidationInfo
    ) -> tuple[Schedule, ...]:
        kind = info.data.get("kind")
        if kind is not None and kind != "scheduled" and value:
            raise _invalid('schedules only apply to "scheduled" triggers')
        names = [schedule.name for schedule in value]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise _invalid(f"schedule names must be distinct: {', '.join(map(repr, repeated))} repeats")
        return value

    @field_validator("topic")
    @classmethod
    def _topic_for_kafka(cls, value: str | None, info: ValidationInfo) -> str | None:
        kind = info.data.get("kind")
        if kind == "kafka" and value is None:
            raise _invalid('a "kafka" trigger names the topic it reads')
        if kind is not None and kind != "kafka" and value is not None:
            raise _invalid('topic only applies to "kafka" triggers')
        return value

    @model_validator(mode="after")
    def _one_shape_of_schedule(self) -> TriggerConfig:
        if self.kind != "scheduled":
            return self
        if self.cron is None and not self.schedules:
            raise _invalid('a "scheduled" trigger needs schedules (or, as before, one cron expression)')
        if self.cron is not None and self.schedules:
            raise _invalid(
                "a scheduled trigger has either schedules or one top-level cron, not both; "
                "move the cron into schedules"
            )
        return self

    def schedule_list(self) -> tuple[Schedule, ...]:
        """The trigger's schedules, whichever shape it was written in (none unless ``scheduled``)."""
        if self.cron is not None:
            legacy = Schedule(
                name=LEGACY_SCHEDULE_NAME,
                cron=self.cron,
                timezone=self.timezone,
                missed_slot_policy=self.missed_slot_policy,
            )
            return (legacy,)
        return self.schedules

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
