"""Network for tests: a tenant's permission to reach loopback targets, and loopback servers (plain
HTTP, and an OpenAI-compatible chat completions endpoint) that record what they were sent.

Nodes refuse loopback and private targets unless the tenant's network policy allows them, and every
server a test runs is on loopback: so a test that has a node call one of them grants the tenant
loopback first (and only loopback: private networks stay refused)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.db import create_engine
from millrace_common.platform.tables import tenant_network_policies
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.infra import Infra

LOOPBACK_NETWORKS = ("127.0.0.0/8", "::1/128")


def grant_loopback(infra: Infra, namespace: str, tenant_id: str) -> None:
    """Let the tenant's HTTP and webhook nodes reach 127.0.0.0/8 and ::1 (the tenant must exist).
    For synchronous tests; async ones await :func:`allow_loopback`."""

    async def run() -> None:
        engine = create_engine(infra.settings(namespace))
        try:
            await allow_loopback(engine, tenant_id)
        finally:
            await engine.dispose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
        return
    # Called from an async test: its loop is busy running the test, so run ours beside it.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, run()).result()


async def allow_loopback(engine: AsyncEngine, tenant_id: str) -> None:
    values = {
        "allow_private_targets": False,
        "allowed_networks": list(LOOPBACK_NETWORKS),
        "updated_at": utc_now(),
    }
    async with engine.begin() as connection:
        await connection.execute(
            pg_insert(tenant_network_policies)
            .values(tenant_id=tenant_id, **values)
            .on_conflict_do_update(index_elements=["tenant_id"], set_=values)
        )


# -- a programmable loopback HTTP server ------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes | str | dict | list | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if isinstance(self.body, dict | list):
            headers.setdefault("content-type", "application/json")
            return json.dumps(self.body).encode(), headers
        if isinstance(self.body, str):
            headers.setdefault("content-type", "text/plain; charset=utf-8")
            return self.body.encode(), headers
        return self.body or b"", headers


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)

    def json(self) -> object:
        return json.loads(self.body)


Route = Callable[[Received], Answer]


class LoopbackServer:
    """Answers each request by its path's route (a fixed :class:`Answer`, a function of the request,
    or a list of answers given in turn); records every request. 404 for unknown paths."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self._routes: dict[str, Route] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Received(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                with server._lock:
                    server.received.append(request)
                    route = server._routes.get(self.path.split("?", 1)[0])
                answer = route(request) if route else Answer(404, "no route")
                if answer.delay_seconds:
                    time.sleep(answer.delay_seconds)
                body, headers = answer.encoded()
                try:
                    self.send_response(answer.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def route(self, path: str, answer: Answer | Route | list[Answer]) -> None:
        if isinstance(answer, Answer):
            fixed = answer
            handler: Route = lambda _request: fixed
        elif isinstance(answer, list):
            queue = list(answer)
            handler = lambda _request: queue.pop(0) if len(queue) > 1 else queue[0]
        else:
            handler = answer
        with self._lock:
            self._routes[path] = handler

    def requests_to(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path.split("?", 1)[0] == path]

    def start(self) -> None:
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def loopback_server() -> Iterator[LoopbackServer]:
    server = LoopbackServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- an OpenAI-compatible chat completions server ---------------------------------------------------


@dataclass(frozen=True)
class ChatToolCall:
    """A tool call the fake model makes: the tool's name and its arguments as the model writes them
    (text, so a test can send arguments that are not JSON)."""

    id: str
    name: str
    arguments: str = "{}"


@dataclass(frozen=True)
class ChatTurn:
    """What the fake model answers: its message content (or tool calls, answered with content null and
    finish_reason ``tool_calls``), and the tokens it says it used."""

    content: str = ""
    prompt_tokens: int = 10
    completion_tokens: int = 5
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_seconds: float = 0
    tool_calls: tuple[ChatToolCall, ...] = ()

    def message(self) -> dict:
        if not self.tool_calls:
            return {"role": "assistant", "content": self.content}
        calls = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in self.tool_calls
        ]
        return {"role": "assistant", "content": None, "tool_calls": calls}


Model = Callable[[dict], ChatTurn]


class ChatRoute:
    """``POST /v1/chat/completions`` as the OpenAI API speaks it, including JSON mode: when the request
    asks for ``{"type": "json_object"}`` and the model's content is not JSON, it answers 400 as such
    servers do. Non-200 turns answer with an error body (which the runner must not echo). Every
    request's JSON body is kept in ``requests``, in order."""

    def __init__(self, model: Model) -> None:
        self._model = model
        self._lock = threading.Lock()
        self.requests: list[dict] = []

    def __call__(self, request: Received) -> Answer:
        asked = json.loads(request.body)
        with self._lock:
            self.requests.append(asked)
        turn = self._model(asked)
        if turn.status != 200:
            error = {"error": {"message": "internal detail: db at 10.1.2.3 failed", "type": "server_error"}}
            return Answer(turn.status, error, turn.headers)
        if (asked.get("response_format") or {}).get("type") == "json_object" and not turn.tool_calls:
            try:
                json.loads(turn.content)
            except ValueError:
                return Answer(
                    400, {"error": {"message": "json mode: content is not JSON", "type": "invalid_request"}}
                )
        completion = {
            "id": f"chatcmpl-{len(request.body)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": asked["model"],
            "choices": [
                {
                    "index": 0,
                    "message": turn.message(),
                    "finish_reason": "tool_calls" if turn.tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": turn.prompt_tokens,
                "completion_tokens": turn.completion_tokens,
                "total_tokens": turn.prompt_tokens + turn.completion_tokens,
            },
        }
        return Answer(200, completion, turn.headers, delay_seconds=turn.delay_seconds)


def chat_route(model: Model) -> ChatRoute:
    """A chat completions route answered by ``model`` (see :class:`ChatRoute`)."""
    return ChatRoute(model)
