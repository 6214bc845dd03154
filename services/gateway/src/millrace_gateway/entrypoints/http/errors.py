"""The gateway's errors: RFC 9457 problem details (``millrace_common.platform.problems``) for every error,
including what the use cases refuse (``domain.refusals``), and the request-body limits: a body declared
too large is refused before it is read, one sent without a length as soon as it grows past the limit."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from millrace_common.platform.problems import Problem, not_found, problem_openapi, problem_response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ApiError = Problem

WEBHOOK_PATH_PREFIX = "/hooks/"

__all__ = ["WEBHOOK_PATH_PREFIX", "ApiError", "Problem", "body_limit_detail", "install", "not_found"]


def body_limit_detail(kind: str, limit: int) -> str:
    """``webhook bodies are limited to 262144 bytes (256 KiB)``: what a 413 says."""
    readable = f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit / 1024:g} KiB"
    return f"{kind} bodies are limited to {limit} bytes ({readable})"


class BodyTooLarge(HTTPException):
    """A body that grew past its limit while it was read (an ``HTTPException``, so FastAPI's body
    parsing passes it on rather than calling it a parse error)."""

    def __init__(self, detail: str) -> None:
        super().__init__(413, detail)


class BodyLimit:
    """ASGI middleware: 413 ``too_large`` for a body over its limit, naming the limit. Webhook calls
    (``/hooks/...``) have their own, lower limit."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, webhook_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.webhook_body_bytes = webhook_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].startswith(WEBHOOK_PATH_PREFIX):
            detail, limit = body_limit_detail("webhook", self.webhook_body_bytes), self.webhook_body_bytes
        else:
            detail, limit = body_limit_detail("request", self.max_body_bytes), self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            errors = [{"pointer": "/header/content-length", "detail": f"declares {declared} bytes"}]
            response = problem_response(Request(scope), 413, "too_large", detail, errors=errors)
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(detail)
            return message

        await self.app(scope, counted, send)


def install(app: FastAPI, *, max_body_bytes: int, webhook_body_bytes: int) -> None:
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes, webhook_body_bytes=webhook_body_bytes)

    @app.exception_handler(BodyTooLarge)
    async def too_large(request: Request, error: BodyTooLarge) -> Response:
        errors = [{"pointer": "/body", "detail": "sent without a length, it grew past the limit"}]
        return problem_response(request, 413, "too_large", error.detail, errors=errors)

    problem_openapi(app)  # create_app installed the handlers; this adds 413 to operations with a body
