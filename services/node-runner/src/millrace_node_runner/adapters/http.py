"""The ``http_request`` node: one HTTP call with httpx, a timeout and a response size cap."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, ConfigDict, JsonValue

from millrace_common.messages.node_commands import NodeError

from millrace_node_runner.domain.outcomes import Failed, Outcome, http_outcome


class HttpRequestInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    method: str = "GET"
    url: str
    headers: dict[str, str] = {}
    query: dict[str, str] = {}
    body: JsonValue = None
    timeout_seconds: float = 30


class HttpRequester:
    def __init__(self, client: httpx.AsyncClient, response_cap_bytes: int) -> None:
        self._client = client
        self._cap = response_cap_bytes

    async def perform(self, request: HttpRequestInput, idempotency_key: str) -> Outcome:
        headers = {"Idempotency-Key": idempotency_key, **request.headers}
        try:
            async with self._client.stream(
                request.method,
                request.url,
                params=request.query or None,
                headers=headers,
                json=request.body if request.body is not None and request.method != "GET" else None,
                timeout=request.timeout_seconds,
            ) as response:
                body, truncated = await self._read_capped(response)
                return http_outcome(
                    response.status_code, {k.lower(): v for k, v in response.headers.items()}, body, truncated=truncated
                )
        except httpx.TimeoutException:
            return Failed(NodeError(type="timeout", message=f"no answer within {request.timeout_seconds:g} s", retryable=True))
        except httpx.TransportError as error:
            return Failed(NodeError(type="connection", message=type(error).__name__, retryable=True))
        except httpx.InvalidURL as error:
            return Failed(NodeError(type="invalid_url", message=str(error), retryable=False))

    async def _read_capped(self, response: httpx.Response) -> tuple[bytes, bool]:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > self._cap:
                return b"".join(chunks)[: self._cap], True
        return b"".join(chunks), False
