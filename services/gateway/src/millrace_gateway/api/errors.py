"""One error shape for every 4xx: ``{"code", "message", "details": [{"pointer", "message"}]}``."""

from __future__ import annotations

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


def not_found(what: str) -> ApiError:
    return ApiError(404, "not_found", f"{what} not found")


def _pointer(location: tuple[object, ...]) -> str:
    return "/" + "/".join(str(part).replace("~", "~0").replace("/", "~1") for part in location)


def install(app: FastAPI, *, max_body_bytes: int) -> None:
    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body_bytes):
            body = {
                "code": "too_large",
                "message": f"request bodies are limited to {max_body_bytes} bytes",
                "details": [],
            }
            return JSONResponse(body, status_code=413)
        return await call_next(request)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        body = {"code": error.code, "message": error.message, "details": error.details}
        return JSONResponse(body, status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"pointer": _pointer(tuple(item.get("loc", ()))), "message": str(item.get("msg", "invalid"))}
            for item in error.errors()
        ]
        body = {"code": "invalid_request", "message": "the request is not valid", "details": details}
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StatementError)
    async def unstorable(_: Request, error: StatementError) -> JSONResponse:
        """PostgreSQL stores neither NUL characters nor unpaired UTF-16 surrogates; such input is the
        caller's to fix, and the transaction has already rolled back."""
        cause = getattr(error, "orig", None)
        if not isinstance(cause, (ValueError, UnicodeError, psycopg.DataError)):
            raise error
        body = {
            "code": "unstorable_value",
            "message": "the request holds characters that cannot be stored (NUL or unpaired surrogates)",
            "details": [],
        }
        return JSONResponse(body, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, error: StarletteHTTPException) -> JSONResponse:
        code = {401: "unauthenticated", 404: "not_found", 405: "method_not_allowed"}.get(
            error.status_code, "http_error"
        )
        return JSONResponse(
            {"code": code, "message": str(error.detail), "details": []}, status_code=error.status_code
        )
