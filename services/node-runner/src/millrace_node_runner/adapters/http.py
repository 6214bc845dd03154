"""One outgoing HTTP exchange for ``http_request`` and ``webhook_out``: redirects followed by hand (each
hop judged again), the answer read up to its cap, every failure a typed error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from urllib.parse import urlsplit

import httpx2
from millrace_common.contracts.node_errors import NodeErrorType
from prometheus_client import CollectorRegistry

from millrace_node_runner.adapters.network import GuardedClients, TargetRefused
from millrace_node_runner.domain.addresses import TargetPolicy, refuse_url
from millrace_node_runner.domain.http import redirect_for, response_outcome
from millrace_node_runner.domain.outcomes import Outcome, failed
from millrace_node_runner.metrics import HttpMetrics

Clock = Callable[[], datetime]
_BODY_HEADERS = frozenset({"content-type", "content-length", "content-encoding", "transfer-encoding"})


@dataclass(frozen=True)
class OutgoingRequest:
    method: str
    url: str
    headers: dict[str, str]
    content: bytes | None
    response_cap_bytes: int
    timeout_seconds: float
    # Headers that carry a credential: not sent on to another origin when redirected.
    secret_headers: frozenset[str] = field(default_factory=frozenset)
    follow_redirects: bool = True


class HttpCaller:
    def __init__(
        self, clients: GuardedClients, *, max_redirects: int, clock: Clock, metrics: HttpMetrics | None = None
    ) -> None:
        self._clients = clients
        self._max_redirects = max_redirects
        self._clock = clock
        # Without a registry of the service's (as in tests), counted on one of its own.
        self._metrics = metrics or HttpMetrics(CollectorRegistry())

    async def send(self, request: OutgoingRequest, policy: TargetPolicy) -> Outcome:
        async with self._clients.client(policy) as client:
            for _ in range(self._max_redirects + 1):
                refusal = refuse_url(request.url, policy)
                if refusal is not None:
                    self._metrics.refused()
                    return failed(NodeErrorType.TARGET_NOT_ALLOWED, refusal.reason, retryable=False)
                try:
                    answer = await self._exchange(client, request)
                except TargetRefused as refused:
                    self._metrics.refused()
                    return failed(NodeErrorType.TARGET_NOT_ALLOWED, refused.reason, retryable=False)
                except httpx2.TimeoutException:
                    self._metrics.no_response()
                    return failed(
                        NodeErrorType.TIMEOUT,
                        f"no answer from {_host(request.url)} within {request.timeout_seconds:g} s",
                        retryable=True,
                    )
                except (httpx2.InvalidURL, httpx2.UnsupportedProtocol) as error:
                    return failed(
                        NodeErrorType.INVALID_URL, f"the URL cannot be requested: {error}", retryable=False
                    )
                except httpx2.TransportError as error:
                    self._metrics.no_response()
                    return failed(
                        NodeErrorType.CONNECTION,
                        f"could not reach {_host(request.url)} ({type(error).__name__})",
                        retryable=True,
                    )
                if isinstance(answer, OutgoingRequest):
                    request = answer
                    continue
                return answer
        return failed(
            NodeErrorType.TOO_MANY_REDIRECTS, f"more than {self._max_redirects} redirects", retryable=False
        )

    async def _exchange(
        self, client: httpx2.AsyncClient, request: OutgoingRequest
    ) -> Outcome | OutgoingRequest:
        async with client.stream(
            request.method,
            request.url,
            headers=request.headers,
            content=request.content,
            timeout=request.timeout_seconds,
        ) as response:
            self._metrics.answered(response.status_code)
            redirect = redirect_for(
                request.method, request.url, response.status_code, response.headers.get("location")
            )
            if redirect is not None and not request.follow_redirects:
                return failed(
                    NodeErrorType.HTTP_STATUS,
                    f"the server answered {response.status_code} "
                    "(a redirect, which this node does not follow)",
                    retryable=False,
                )
            if redirect is not None:
                headers = {
                    name: value
                    for name, value in request.headers.items()
                    if (redirect.same_origin or name.lower() not in request.secret_headers)
                    and (redirect.keeps_body or name.lower() not in _BODY_HEADERS)
                }
                return replace(
                    request,
                    url=redirect.url,
                    method=redirect.method,
                    headers=headers,
                    content=request.content if redirect.keeps_body else None,
                )
            body, truncated = await _read_capped(response, request.response_cap_bytes)
            headers = {name.lower(): value for name, value in response.headers.items()}
            return response_outcome(
                response.status_code,
                headers,
                body,
                truncated=truncated,
                url=str(response.url),
                now=self._clock(),
            )


async def _read_capped(response: httpx2.Response, cap: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size > cap:
            return b"".join(chunks)[:cap], True
    return b"".join(chunks), False


def _host(url: str) -> str:
    """Host and port only: a URL's user information may be a password."""
    try:
        parts = urlsplit(url)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
    except ValueError:
        return "the target"
