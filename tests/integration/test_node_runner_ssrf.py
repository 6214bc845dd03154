"""The SSRF guard on real connections: loopback servers, a fake resolver, and beneath the guard a
network backend that connects only to loopback and records every address it was asked for, so a
test that would reach anything else fails instead of sending traffic."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from ipaddress import ip_address

import httpcore2
import pytest
from millrace_node_runner.adapters.ai import ChatEndpoint
from millrace_node_runner.adapters.http import HttpCaller, OutgoingRequest
from millrace_node_runner.adapters.network import GuardedClients
from millrace_node_runner.domain.addresses import IPAddress, TargetPolicy
from millrace_node_runner.domain.ai import AiSettings, ChatRequest
from millrace_node_runner.domain.outcomes import Failed, Succeeded

from tests.support.network import Answer, ChatTurn, LoopbackServer, chat_route, loopback_server

pytestmark = pytest.mark.integration

STRICT = TargetPolicy()
LOOPBACK_ONLY = TargetPolicy.from_settings(False, ["127.0.0.0/8", "::1/128"])


class LoopbackOnlyBackend(httpcore2.AsyncNetworkBackend):
    def __init__(self) -> None:
        self.addresses: list[str] = []
        self._real = httpcore2.AnyIOBackend()

    async def connect_tcp(self, host: str, port: int, **options: object) -> httpcore2.AsyncNetworkStream:
        self.addresses.append(host)
        if not ip_address(host).is_loopback:
            raise AssertionError(f"the guard let a connection to {host} through")
        return await self._real.connect_tcp(host, port, **options)  # type: ignore[arg-type]

    async def connect_unix_socket(self, path: str, **options: object) -> httpcore2.AsyncNetworkStream:
        raise AssertionError("no unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._real.sleep(seconds)


class FakeResolver:
    """Names to addresses; an entry with several answers gives them in turn (one per lookup)."""

    def __init__(self, answers: dict[str, list[list[str]]]) -> None:
        self._answers = answers
        self.lookups: list[str] = []

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append(host)
        turns = self._answers.get(host)
        if not turns:
            raise httpcore2.ConnectError(f"{host} cannot be resolved")
        current = turns.pop(0) if len(turns) > 1 else turns[0]
        return [ip_address(a) for a in current]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


@pytest.fixture
def backend() -> LoopbackOnlyBackend:
    return LoopbackOnlyBackend()


def caller(
    backend: LoopbackOnlyBackend, resolver: FakeResolver | None = None
) -> tuple[HttpCaller, GuardedClients]:
    clients = GuardedClients(resolver or FakeResolver({}), max_connections=4, inner=backend)
    return HttpCaller(clients, max_redirects=3, clock=lambda: datetime.now(UTC)), clients


def get(
    url: str, *, headers: dict[str, str] | None = None, cap: int = 100_000, timeout: float = 5
) -> OutgoingRequest:
    return OutgoingRequest(
        "GET", url, headers or {}, None, cap, timeout, frozenset(h.lower() for h in (headers or {}))
    )


async def send_all(
    http: HttpCaller, urls: Iterable[str], policy: TargetPolicy
) -> dict[str, Failed | Succeeded]:
    return {url: await http.send(get(url), policy) for url in urls}


SSRF_LIST = [
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://127.1/",
    "http://0.0.0.0/",
    "http://[::1]/",
    "http://2130706433/",
    "http://0x7f000001/",
    "http://017700000001/",
    "http://[::ffff:169.254.169.254]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://10.0.0.1/",
    "http://internal.test/",
    "http://rebind.test/",
    "file:///etc/passwd",
    "gopher://127.0.0.1:70/",
]


async def test_the_ssrf_list_is_refused_before_any_connection(backend: LoopbackOnlyBackend):
    resolver = FakeResolver(
        {
            "internal.test": [["10.0.0.1"]],
            "rebind.test": [["93.184.216.34", "10.0.0.1"]],
            "metadata.google.internal": [["169.254.169.254"]],
        }
    )
    http, clients = caller(backend, resolver)
    try:
        results = await send_all(http, SSRF_LIST, STRICT)
    finally:
        await clients.aclose()

    refused = {url: r.error.type for url, r in results.items() if isinstance(r, Failed)}
    assert refused == {url: "target_not_allowed" for url in SSRF_LIST}
    assert all(not r.error.retryable for r in results.values() if isinstance(r, Failed))
    assert backend.addresses == []
    assert "metadata.google.internal" not in resolver.lookups


async def test_loopback_is_refused_by_default_and_reached_once_the_tenant_allows_it(
    backend: LoopbackOnlyBackend, server: LoopbackServer
):
    server.route("/ok", Answer(200, {"fine": True}))
    http, clients = caller(backend)
    try:
        refused = await http.send(get(f"{server.url}/ok"), STRICT)
        reached = await http.send(get(f"{server.url}/ok"), LOOPBACK_ONLY)
    finally:
        await clients.aclose()

    assert isinstance(refused, Failed) and refused.error.type == "target_not_allowed"
    assert (
        refused.error.message
        == "127.0.0.1 is a loopback address; the tenant's network policy does not allow it"
    )
    assert isinstance(reached, Succeeded) and reached.output["body"] == {"fine": True}
    assert len(server.received) == 1


async def test_a_redirect_from_an_allowed_host_to_a_private_address_is_refused_without_connecting(
    backend: LoopbackOnlyBackend, server: LoopbackServer
):
    server.route("/hop", Answer(302, headers={"location": "http://10.0.0.1/admin"}))
    http, clients = caller(backend)
    try:
        result = await http.send(get(f"{server.url}/hop"), LOOPBACK_ONLY)
    finally:
        await clients.aclose()

    assert isinstance(result, Failed) and result.error.type == "target_not_allowed"
    assert "10.0.0.1 is a private address" in result.error.message
    assert backend.addresses == ["127.0.0.1"]
    assert [r.path for r in server.received] == ["/hop"]


async def test_a_redirect_hop_through_a_name_is_judged_by_its_addresses_too(
    backend: LoopbackOnlyBackend, server: LoopbackServer
):
    server.route("/hop", Answer(307, headers={"location": "http://sneaky.test/"}))
    http, clients = caller(backend, FakeResolver({"sneaky.test": [["169.254.169.254"]]}))
    try:
        result = await http.send(get(f"{server.url}/hop"), LOOPBACK_ONLY)
    finally:
        await clients.aclose()

    assert isinstance(result, Failed) and result.error.message.startswith(
        "sneaky.test: 169.254.169.254 is a cloud metadata address"
    )
    assert backend.addresses == ["127.0.0.1"]


async def test_a_name_is_resolved_once_and_the_connection_goes_to_the_checked_address(
    backend: LoopbackOnlyBackend, server: LoopbackServer
):
    server.route("/named", Answer(200, "hello"))
    resolver = FakeResolver({"service.test": [["127.0.0.1"], ["10.0.0.1"]]})
    http, clients = caller(backend, resolver)
    try:
        result = await http.send(get(f"http://service.test:{server.port}/named"), LOOPBACK_ONLY)
    finally:
        await clients.aclose()

    assert isinstance(result, Succeeded) and result.output["body"] == "hello"
    assert resolver.lookups == ["service.test"]
    assert backend.addresses == ["127.0.0.1"]
    assert server.received[0].header("host") == f"service.test:{server.port}"


async def test_a_rebinding_name_cannot_move_an_open_check_to_another_address():
    """The address that was judged is the address connected to: no second lookup in between."""
    connected: list[str] = []

    class Refusing(LoopbackOnlyBackend):
        async def connect_tcp(self, host: str, port: int, **options: object) -> httpcore2.AsyncNetworkStream:
            connected.append(host)
            raise httpcore2.ConnectError("no route (test)")

    resolver = FakeResolver({"rebind.test": [["93.184.216.34"], ["127.0.0.1"]]})
    http, clients = caller(Refusing(), resolver)
    try:
        result = await http.send(get("http://rebind.test/"), STRICT)
    finally:
        await clients.aclose()

    assert isinstance(result, Failed) and result.error.type == "connection" and result.error.retryable
    assert connected == ["93.184.216.34"] and resolver.lookups == ["rebind.test"]


async def test_credentials_stay_behind_when_a_redirect_leaves_the_origin(backend: LoopbackOnlyBackend):
    with loopback_server() as first, loopback_server() as second:
        second.route("/landing", Answer(200, "landed"))
        first.route("/start", Answer(302, headers={"location": f"{second.url}/landing"}))
        http, clients = caller(backend)
        try:
            result = await http.send(
                get(f"{first.url}/start", headers={"Authorization": "Bearer s3cret", "X-Trace": "t-1"}),
                LOOPBACK_ONLY,
            )
        finally:
            await clients.aclose()

    assert isinstance(result, Succeeded) and result.output["body"] == "landed"
    assert first.received[0].header("authorization") == "Bearer s3cret"
    assert second.received[0].header("authorization") is None


async def test_answers_are_cut_at_the_cap_and_slow_targets_time_out(
    backend: LoopbackOnlyBackend, server: LoopbackServer
):
    server.route("/big", Answer(200, "x" * 200_000))
    server.route("/slow", Answer(200, "late", delay_seconds=2))
    http, clients = caller(backend)
    try:
        big = await http.send(get(f"{server.url}/big", cap=1000), LOOPBACK_ONLY)
        slow = await http.send(get(f"{server.url}/slow", timeout=0.3), LOOPBACK_ONLY)
    finally:
        await clients.aclose()

    assert isinstance(big, Succeeded) and big.output["truncated"] is True and len(big.output["body"]) == 1000
    assert isinstance(slow, Failed) and slow.error.type == "timeout" and slow.error.retryable


async def test_an_ai_endpoint_the_tenant_may_not_reach_never_receives_the_key(
    backend: LoopbackOnlyBackend, server: LoopbackServer
):
    server.route("/v1/chat/completions", chat_route(lambda _: ChatTurn("hello")))
    clients = GuardedClients(FakeResolver({"llm.test": [["127.0.0.1"]]}), max_connections=4, inner=backend)
    endpoint = ChatEndpoint(clients, lambda: datetime.now(UTC))
    request = ChatRequest("m", (("user", "hi"),), 0.0, 10, json_mode=False)

    def settings(base_url: str, allow_private: bool) -> AiSettings:
        return AiSettings(base_url, "m", 0.0, 10, None, allow_private_endpoint=allow_private)

    try:
        by_address = await endpoint.complete(settings(f"{server.url}/v1", False), "sk-tenant-key", request, 5)
        by_name = await endpoint.complete(
            settings(f"http://llm.test:{server.port}/v1", False), "sk-tenant-key", request, 5
        )
        metadata = await endpoint.complete(
            settings("http://169.254.169.254/v1", True), "sk-tenant-key", request, 5
        )
        assert server.received == [] and backend.addresses == []
        allowed = await endpoint.complete(
            settings(f"http://llm.test:{server.port}/v1", True), "sk-tenant-key", request, 5
        )
    finally:
        await clients.aclose()

    for refused in (by_address, by_name, metadata):
        assert (
            isinstance(refused, Failed)
            and refused.error.type == "target_not_allowed"
            and not refused.error.retryable
        )
    assert not isinstance(allowed, Failed) and allowed.content == "hello"
    assert [r.header("authorization") for r in server.received] == ["Bearer sk-tenant-key"]
