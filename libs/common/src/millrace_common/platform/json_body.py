"""The ASGI side of the JSON depth limit (``millrace_common.contracts.json_depth``): the middleware
every service installs, and the 400 it answers."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from millrace_common.contracts.json_depth import MAX_JSON_DEPTH, DepthScanner, depth_detail


class JsonTooDeep(HTTPException):
    """A JSON body nested deeper than the limit: 400 ``invalid_body`` with the pointer ``/body``.

    An ``HTTPException``, so that FastAPI's body parsing passes it on rather than calling it a
    parse error; ``millrace_common.platform.problems`` answers it as problem details."""

    code = "invalid_body"

    def __init__(self, limit: int = MAX_JSON_DEPTH) -> None:
        super().__init__(400, f"the body is {depth_detail(limit)}")
        self.errors = [{"pointer": "/body", "detail": depth_detail(limit)}]


def declares_json(headers: Headers) -> bool:
    """``application/json`` or ``application/<anything>+json``: the bodies FastAPI parses as JSON."""
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class JsonDepthLimit:
    """ASGI middleware: a JSON request body that nests deeper than ``limit`` fails the application's
    read of it with :class:`JsonTooDeep`, before anything has parsed it. Nothing is buffered: each
    chunk is counted as the application receives it, so size limits keep working as before."""

    def __init__(self, app: ASGIApp, limit: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not declares_json(Headers(scope=scope)):
            await self.app(scope, receive, send)
            return
        scanner = DepthScanner(self.limit)

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request" and not scanner.feed(message.get("body", b"")):
                raise JsonTooDeep(self.limit)
            return message

        await self.app(scope, counted, send)
