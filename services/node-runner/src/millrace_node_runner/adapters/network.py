"""Outgoing connections that honour the SSRF guard: resolve once, judge every address, connect to the
address that was judged (so a second lookup cannot rebind the name), refuse before any byte is sent.

The guard sits in the network backend of httpcore2, under connection pooling and TLS, so it holds
for every connection a client opens: the first request, each redirect hop, and the AI client's calls
alike. TLS still verifies the certificate against the host name, which stays the connection's origin.

The stack is httpx2 (what the ``openai`` client is built on): its pool assigns requests in time linear
in its connections, where httpx 0.28's is quadratic, which dominated the runner's cost per node.
"""

from __future__ import annotations

import asyncio
import select
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Protocol

import httpcore2
import httpx2

from millrace_node_runner.domain.addresses import (
    IPAddress,
    TargetPolicy,
    parse_ip_literal,
    refuse_addresses,
    refuse_name,
)

MAX_CACHED_POLICIES = 64


class TargetRefused(Exception):
    """A connection the tenant's network policy does not allow; nothing was sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Resolver(Protocol):
    async def resolve(self, host: str, port: int) -> list[IPAddress]: ...


class SystemResolver:
    """The operating system's resolver (``getaddrinfo``), asked once per new connection."""

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise httpcore2.ConnectError(f"{host} cannot be resolved") from error
        found: list[IPAddress] = []
        for *_, sockaddr in infos:
            address = parse_ip_literal(str(sockaddr[0]))
            if address is not None and address not in found:
                found.append(address)
        return found


class GuardedNetworkBackend(httpcore2.AsyncNetworkBackend):
    def __init__(
        self, policy: TargetPolicy, resolver: Resolver, inner: httpcore2.AsyncNetworkBackend | None = None
    ) -> None:
        self._policy = policy
        self._resolver = resolver
        self._inner = inner or httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        refusal = refuse_name(host)
        if refusal is not None:
            raise TargetRefused(refusal.reason)
        literal = parse_ip_literal(host)
        addresses = [literal] if literal is not None else await self._resolve(host, port, timeout)
        refusal = refuse_addresses(host, addresses, self._policy)
        if refusal is not None:
            raise TargetRefused(refusal.reason)
        failure: Exception | None = None
        for address in addresses:
            try:
                stream = await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
                return _SocketCachingStream(stream)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[IPAddress]:
        try:
            return await asyncio.wait_for(self._resolver.resolve(host, port), timeout)
        except TimeoutError as error:
            raise httpcore2.ConnectTimeout(f"{host} did not resolve in time") from error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise TargetRefused("unix sockets are never reachable from nodes")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _SocketCachingStream(httpcore2.AsyncNetworkStream):
    """The backend's stream with its socket looked up once. Each time the pool assigns a request it
    asks every idle connection whether its socket is readable (a server that hung up), and anyio's
    attribute lookup behind that question cost more than the rest of an HTTP node."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return _SocketCachingStream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        if info == "socket" and self._socket is not None:
            return self._socket
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._inner.get_extra_info(info)


def _readable(sock: socket.socket) -> bool:
    """Whether a read would return at once: data, or the end of a connection the server closed."""
    descriptor = sock.fileno()
    if descriptor < 0:
        return True
    poller = select.poll()
    poller.register(descriptor, select.POLLIN)
    return bool(poller.poll(0))


class GuardedTransport(httpx2.AsyncHTTPTransport):
    """httpx2's transport with its connection pool on the guarded backend; no proxies (a proxy would
    make the connection on our behalf, past the guard)."""

    def __init__(
        self,
        policy: TargetPolicy,
        resolver: Resolver,
        limits: httpx2.Limits,
        inner: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(limits=limits, trust_env=False)
        # httpx2 builds its pool without a way to pass a network backend; this is the one it would
        # build, on ours.
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedNetworkBackend(policy, resolver, inner),
        )


class GuardedClients:
    """One pooled client per distinct policy, since a pooled connection was judged by the policy
    that opened it. Past :data:`MAX_CACHED_POLICIES` policies, callers get a client of their own."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        max_connections: int,
        max_idle_connections: int | None = None,
        inner: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        self._resolver = resolver
        self._inner = inner
        self._limits = httpx2.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_idle_connections
            if max_idle_connections is not None
            else max_connections,
            keepalive_expiry=15,
        )
        self._clients: dict[TargetPolicy, httpx2.AsyncClient] = {}

    @asynccontextmanager
    async def client(self, policy: TargetPolicy) -> AsyncIterator[httpx2.AsyncClient]:
        shared = self._clients.get(policy)
        if shared is None and len(self._clients) < MAX_CACHED_POLICIES:
            shared = self._clients[policy] = self._new(policy)
        if shared is not None:
            yield shared
            return
        async with self._new(policy) as own:
            yield own

    def _new(self, policy: TargetPolicy) -> httpx2.AsyncClient:
        return httpx2.AsyncClient(
            transport=GuardedTransport(policy, self._resolver, self._limits, self._inner),
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
