"""The external call node configs: HTTP requests and outgoing webhooks."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, JsonValue, ValidationInfo, field_validator

from millrace_common.language.workflow_configs.base import CredentialName, NodeConfig, _Frozen, _invalid

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
