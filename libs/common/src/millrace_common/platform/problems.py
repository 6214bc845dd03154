"""One error format for every HTTP error of every service: RFC 9457 problem details.

Every error answer is ``application/problem+json``::

    {"type": "urn:millrace:problem:invalid_request", "title": "Unprocessable Content", "status": 422,
     "detail": "the request is not valid", "instance": "/api/v1/workflows", "code": "invalid_request",
     "errors": [{"pointer": "/body/name", "detail": "Field required"}]}

``code`` (our stable, documented error code; ``type`` is built from it) and ``errors`` (field problems
as RFC 6901 JSON pointers into the request) are extension members. A service raises :class:`Problem`;
the handlers installed by :func:`install_problem_handlers` turn it, FastAPI's validation errors,
Starlette's HTTP errors and an unreachable database or broker into problem answers, and
:func:`problem_openapi` declares the format for every status each operation can answer.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from millrace_common.contracts.outgoing import MessageTooLarge
from millrace_common.platform.json_body import JsonDepthLimit, JsonTooDeep
from millrace_common.platform.outages import OncePerInterval, unreachable_dependency
from millrace_common.platform.problem_format import (
    PROBLEM_MEDIA_TYPE,
    STATUS_CODES,
    problem_body,
    title,
)
from millrace_common.platform.refusals import Refused

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


class FieldProblem(BaseModel):
    """One problem with one part of the request."""

    pointer: str = Field(description="RFC 6901 JSON pointer: /body/..., /query/..., /path/..., /header/...")
    detail: str = Field(description="what is wrong there")


class ProblemDetails(BaseModel):
    """RFC 9457 problem details, with ``code`` and ``errors`` as extension members."""

    type: str = Field(description="urn:millrace:problem:<code>; docs/api.md describes each code")
    title: str = Field(description="the HTTP status's phrase")
    status: int = Field(description="the HTTP status code, repeated")
    detail: str = Field(description="what went wrong, for a person")
    instance: str = Field(description="the request's path")
    code: str = Field(description="a stable machine-readable code, listed in docs/api.md")
    errors: list[FieldProblem] = Field(default_factory=list, description="field problems, if any")


class Problem(Exception):
    """An error answer: raise it anywhere a request is handled."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        errors: Iterable[Mapping[str, str]] = (),
        *,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = [dict(error) for error in errors]
        self.headers = dict(headers or {})

    @property
    def message(self) -> str:
        return self.detail


def not_found(what: str) -> Problem:
    return Problem(404, "not_found", f"{what} not found")


def unavailable(what: str) -> Problem:
    return Problem(503, "unavailable", what, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def declared(**statuses: str) -> dict[int | str, dict[str, Any]]:
    """A route's ``responses=`` for the error statuses it raises itself, beyond those
    :func:`problem_openapi` adds by rule: ``declared(conflict="a pipeline with this id exists")``."""
    by_name = {HTTPStatus(code).name.lower(): code for code in STATUS_CODES} | {"conflict": 409}
    return {by_name[name]: {"description": description} for name, description in statuses.items()}


def problem_response(
    request: Request,
    status: int,
    code: str,
    detail: str,
    *,
    errors: Iterable[Mapping[str, str]] = (),
    headers: Mapping[str, str] | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> JSONResponse:
    body = problem_body(status, code, detail, instance=request.url.path, errors=errors, extensions=extensions)
    return JSONResponse(body, status_code=status, headers=dict(headers or {}), media_type=PROBLEM_MEDIA_TYPE)


def json_pointer(location: Iterable[object]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in location)


def install_problem_handlers(app: FastAPI) -> None:
    """Every error this app answers becomes problem JSON; so does an unreachable PostgreSQL or Kafka
    (503 with Retry-After, logged once per 30 s rather than once per request). A JSON body nested deeper
    than ``json_depth.MAX_JSON_DEPTH`` is refused (400 ``invalid_body``) while it is read, before any
    parser recurses into it."""
    outages = OncePerInterval()

    @app.exception_handler(Problem)
    async def problem(request: Request, error: Problem) -> JSONResponse:
        return problem_response(
            request, error.status, error.code, error.detail, errors=error.errors, headers=error.headers
        )

    app.add_middleware(JsonDepthLimit)

    @app.exception_handler(JsonTooDeep)
    async def json_too_deep(request: Request, error: JsonTooDeep) -> JSONResponse:
        return problem_response(request, error.status_code, error.code, error.detail, errors=error.errors)

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        errors = [{"pointer": p.pointer, "detail": p.detail} for p in error.problems]
        return problem_response(
            request, error.status, error.code, error.detail, errors=errors, extensions=error.extensions()
        )

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
        errors = [
            {"pointer": json_pointer(item.get("loc", ())), "detail": str(item.get("msg", "invalid"))}
            for item in error.errors()
        ]
        return problem_response(request, 422, "invalid_request", "the request is not valid", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(error.status_code, "http_error")
        return problem_response(
            request, error.status_code, code, str(error.detail), headers=getattr(error, "headers", None)
        )

    async def dependency_down(request: Request, error: Exception) -> JSONResponse:
        missing = unreachable_dependency(error)
        if missing is None and _unstorable(error):
            # PostgreSQL stores neither NUL characters nor unpaired UTF-16 surrogates; such input is
            # the caller's to fix, and the transaction has already rolled back.
            detail = "the request holds characters that cannot be stored (NUL or unpaired surrogates)"
            return problem_response(request, 422, "unstorable_value", detail)
        if missing is None:
            raise error  # not an outage: the 500 handler below answers it
        if outages.due(missing):
            log.warning(
                "answering 503: a dependency is unreachable (said once per 30 s)",
                extra={"ids": {"dependency": missing, "error": type(error).__name__}},
            )
        return problem_response(
            request,
            503,
            "unavailable",
            f"{missing} is unreachable; try again shortly",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )

    @app.exception_handler(MessageTooLarge)
    async def message_too_large(request: Request, error: MessageTooLarge) -> JSONResponse:
        return problem_response(request, 413, "too_large", str(error))

    for kind in _outage_types():
        app.add_exception_handler(kind, dependency_down)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, _: Exception) -> JSONResponse:
        # Starlette re-raises after this answer, so the server logs the traceback once.
        return problem_response(request, 500, "internal", "an unexpected error; it has been logged")


def _outage_types() -> tuple[type[Exception], ...]:
    import psycopg
    from aiokafka.errors import KafkaError
    from sqlalchemy.exc import StatementError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    return (StatementError, PoolTimeout, psycopg.OperationalError, KafkaError, ConnectionError)


def _unstorable(error: Exception) -> bool:
    import psycopg
    from sqlalchemy.exc import StatementError

    cause = getattr(error, "orig", None)
    return isinstance(error, StatementError) and isinstance(
        cause, ValueError | UnicodeError | psycopg.DataError
    )


# ---- OpenAPI -------------------------------------------------------------------------------------

_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemDetails"}


def problem_openapi(app: FastAPI, *, body_limit: bool = True) -> None:
    """Make ``app.openapi()`` declare problem JSON for every status each operation can answer:

    - 503 everywhere but the liveness and metrics endpoints (PostgreSQL or Kafka unreachable);
    - 422 where the operation takes parameters or a body, 400 and 413 where it takes a body;
    - 401 and 403 where it needs credentials, 404 where its path names something;
    - whatever the route itself declares in ``responses`` (409, 415, ...), as problem JSON.
    FastAPI's own ``HTTPValidationError`` (a shape the server never sends) is dropped.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        components["FieldProblem"] = FieldProblem.model_json_schema()
        problem_schema = ProblemDetails.model_json_schema(ref_template="#/components/schemas/{model}")
        problem_schema.pop("$defs", None)
        components["ProblemDetails"] = problem_schema
        for path, methods in schema.get("paths", {}).items():
            for operation in methods.values():
                _declare_problems(path, operation, body_limit=body_limit)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _declare_problems(path: str, operation: dict[str, Any], *, body_limit: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses: set[int] = {int(s) for s in responses if s.isdigit() and int(s) >= 400}
    if path not in ("/healthz", "/metrics"):
        statuses.add(503)
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.add(422)
    if operation.get("requestBody"):
        statuses.add(400)
        if body_limit:
            statuses.add(413)
    if operation.get("security"):
        statuses.update((401, 403))
    if "{" in path:
        statuses.add(404)
    for status in sorted(statuses):
        entry = responses.setdefault(str(status), {})
        entry["description"] = entry.get("description") or title(status)
        if status == 422 and "HTTPValidationError" in str(entry.get("content")):
            entry["description"] = "the request is not valid (errors name each field)"
        entry["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
        if status == 503:
            entry["headers"] = {
                "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
            }
