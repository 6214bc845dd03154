"""The gateway's errors: RFC 9457 problem details (``millrace_common.problems``) for every error, and
the request-body limit, refused before the body is read."""

from __future__ import annotations

from fastapi import FastAPI, Request
from millrace_common.problems import Problem, not_found, problem_openapi, problem_response

ApiError = Problem

__all__ = ["ApiError", "Problem", "install", "not_found"]


def install(app: FastAPI, *, max_body_bytes: int) -> None:
    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_body_bytes):
            detail = f"request bodies are limited to {max_body_bytes} bytes"
            return problem_response(request, 413, "too_large", detail)
        return await call_next(request)

    problem_openapi(app)  # create_app installed the handlers; this adds 413 to operations with a body
