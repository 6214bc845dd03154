"""The AI node configs: prompt, analysis (with its output schema) and classification."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, JsonValue, field_validator

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.workflow_configs.base import NodeConfig, _invalid


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
