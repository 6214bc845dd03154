"""The approval service's HTTP API, as the gateway forwards the web app's approval calls to it (the
approval service stays the only one that reads and decides approvals)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx2

FORWARDED_HEADERS = ("authorization", "content-type", "accept")


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


class ApprovalUnreachable(Exception):
    """The approval service did not answer (connection refused, timed out)."""


class ApprovalApi:
    def __init__(self, base_url: str, *, timeout: float = 10.0) -> None:
        self._client = httpx2.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout)

    async def forward(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        kept = {name: value for name, value in headers.items() if name.lower() in FORWARDED_HEADERS}
        url = f"{path}?{query}" if query else path
        try:
            answer = await self._client.request(method, url, headers=kept, content=body or None)
        except httpx2.HTTPError as error:
            raise ApprovalUnreachable(type(error).__name__) from error
        return Answer(
            answer.status_code, answer.headers.get("content-type", "application/json"), answer.content
        )

    async def close(self) -> None:
        await self._client.aclose()
