"""The RFC 9457 problem-details body, without a web framework: ``problems`` builds FastAPI's error
handling on it, and the operational endpoints of the services that have no API of their own
(``service.operations_app``) answer with it directly."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_PREFIX = "urn:millrace:problem:"

# The code of an HTTP error that no handler named more precisely.
STATUS_CODES: Mapping[int, str] = {
    400: "malformed_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    503: "unavailable",
}


def title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int,
    code: str,
    detail: str,
    *,
    instance: str,
    errors: Iterable[Mapping[str, str]] = (),
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        **(extensions or {}),
        "type": f"{TYPE_PREFIX}{code}",
        "title": title(status),
        "status": status,
        "detail": detail,
        "instance": instance,
        "code": code,
        "errors": [{"pointer": error["pointer"], "detail": error["detail"]} for error in errors],
    }
