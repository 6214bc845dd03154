"""Every (method, path template, status) the test suite sees a service answer, held against what the
services' OpenAPI documents declare for that operation.

``tests/conftest.py`` wraps httpx's ``Client.send`` and ``AsyncClient.send`` for the whole session, so
each answer a test gets from a service it started (127.0.0.1, an API path) is recorded; when the
session ends, an answer with a status the operation does not declare fails the run and names it.
Everything seen is written to ``test-artifacts/observed-statuses.json``. The browser's own requests
(Playwright) are not seen; the API tests cover the same operations."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

RECORDED_PREFIXES = ("/api/", "/hooks/", "/healthz", "/readyz")
HOSTS = ("127.0.0.1", "localhost")


@dataclass(frozen=True, order=True)
class Seen:
    method: str
    path: str
    status: int


@dataclass(frozen=True, order=True)
class Undeclared:
    method: str
    template: str
    status: int
    example: str


class Recorder:
    def __init__(self) -> None:
        self.seen: set[Seen] = set()

    def record(self, response: httpx.Response) -> None:
        url = response.request.url
        if url.host in HOSTS and url.path.startswith(RECORDED_PREFIXES):
            self.seen.add(Seen(response.request.method.upper(), url.path, response.status_code))

    def install(self) -> None:
        """Record every answer of every httpx client in this process from now on."""
        recorder = self
        sync_send, async_send = httpx.Client.send, httpx.AsyncClient.send

        def send(client: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            response = sync_send(client, request, **kwargs)
            recorder.record(response)
            return response

        async def asend(client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            response = await async_send(client, request, **kwargs)
            recorder.record(response)
            return response

        httpx.Client.send = send  # type: ignore[method-assign]
        httpx.AsyncClient.send = asend  # type: ignore[method-assign]


def _pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join(
        (".+" if part.endswith(":path}") else "[^/]+") if part.startswith("{") else re.escape(part)
        for part in parts
    )
    return re.compile(f"^{regex}$")


def declared_statuses(documents: Iterable[Mapping[str, Any]]) -> dict[tuple[str, str], set[int]]:
    """(METHOD, template) -> declared statuses, across the documents (a path in several: the union)."""
    declared: dict[tuple[str, str], set[int]] = {}
    for document in documents:
        for template, operations in document.get("paths", {}).items():
            for method, operation in operations.items():
                statuses: set[int] = set()
                for key in operation.get("responses", {}):
                    if key.isdigit():
                        statuses.add(int(key))
                    elif len(key) == 3 and key[0].isdigit() and key[1:].upper() == "XX":
                        # OpenAPI's range ("4XX"): every status of that class is declared.
                        statuses.update(range(int(key[0]) * 100, int(key[0]) * 100 + 100))
                declared.setdefault((method.upper(), template), set()).update(statuses)
    return declared


def undeclared(seen: Iterable[Seen], declared: Mapping[tuple[str, str], set[int]]) -> list[Undeclared]:
    """What was answered but not declared. A path no document names (an unknown path's 404, an
    undocumented route) is not judged; neither is a method the path does not have (405)."""
    patterns = {template: _pattern(template) for _, template in declared}
    found: dict[tuple[str, str, int], Undeclared] = {}
    for answer in seen:
        # The most specific template wins: /runs/{run_id}/export before /runs/{run_id}.
        templates = sorted(
            (t for t, p in patterns.items() if p.match(answer.path)), key=lambda t: (-t.count("/"), "{" in t)
        )
        template = next((t for t in templates if (answer.method, t) in declared), None)
        if template is None:
            continue
        if answer.status not in declared[(answer.method, template)]:
            key = (answer.method, template, answer.status)
            found.setdefault(key, Undeclared(answer.method, template, answer.status, answer.path))
    return sorted(found.values())


def service_documents() -> list[dict[str, Any]]:
    """The gateway's and the approval service's OpenAPI documents, built without starting either."""
    from millrace_approval.bootstrap import build
    from millrace_approval.settings import ApprovalSettings
    from millrace_gateway.openapi_document import document
    from pydantic import SecretStr

    approval = build(
        ApprovalSettings(jwt_secret=SecretStr("openapi-document-only-nothing-is-signed-with-it"))
    )
    return [document(), approval.openapi()]


def write_report(path: Path, seen: Iterable[Seen], missing: list[Undeclared]) -> None:
    path.parent.mkdir(exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "seen": [[s.method, s.path, s.status] for s in sorted(seen)],
                "undeclared": [[u.method, u.template, u.status, u.example] for u in missing],
            },
            indent=1,
        )
    )
