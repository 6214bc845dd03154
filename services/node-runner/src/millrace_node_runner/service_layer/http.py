"""``http_request`` and ``webhook_out``: build the request from the node's input and the tenant's
credentials, send it under the tenant's network policy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx2
from millrace_common.contracts.messages.node_commands import ExecuteNode
from millrace_common.contracts.node_errors import NodeErrorType

from millrace_node_runner.adapters.http import HttpCaller, OutgoingRequest
from millrace_node_runner.adapters.tenants import TenantConfig
from millrace_node_runner.domain.http import (
    SIGNATURE_HEADER,
    BasicSecret,
    BearerSecret,
    HeaderSecret,
    HmacSecret,
    auth_headers,
    compact_json,
    encode_body,
    idempotency_key,
    merge_headers,
    webhook_signature,
)
from millrace_node_runner.domain.inputs import HttpRequestInput, WebhookOutInput
from millrace_node_runner.domain.outcomes import Outcome, failed

Clock = Callable[[], datetime]
USER_AGENT = "Millrace-Runner/1"


class HttpNodes:
    def __init__(
        self, tenants: TenantConfig, caller: HttpCaller, *, response_cap_ceiling: int, clock: Clock
    ) -> None:
        self._tenants = tenants
        self._caller = caller
        self._cap_ceiling = response_cap_ceiling
        self._clock = clock

    async def request(self, command: ExecuteNode) -> Outcome:
        node = HttpRequestInput.model_validate(command.input)
        try:
            url = str(httpx2.URL(node.url).copy_merge_params(node.query)) if node.query else node.url
        except httpx2.InvalidURL as error:
            return failed(NodeErrorType.INVALID_URL, f"the URL cannot be requested: {error}", retryable=False)
        content, content_type = encode_body(node.body_type, node.body if node.method != "GET" else None)
        secret_headers: dict[str, str] = {}
        if node.auth is not None:
            secret = await self._tenants.credential(command.tenant_id, node.auth.credential, node.auth.type)
            assert isinstance(secret, BearerSecret | BasicSecret | HeaderSecret)
            secret_headers = auth_headers(secret)
        headers = merge_headers(
            {
                "User-Agent": USER_AGENT,
                "Idempotency-Key": idempotency_key(command.run_id, command.node_id, command.attempt),
            },
            {"Content-Type": content_type} if content_type else {},
            node.headers,
            secret_headers,
        )
        request = OutgoingRequest(
            method=node.method,
            url=url,
            headers=headers,
            content=content,
            response_cap_bytes=min(node.response_cap_bytes, self._cap_ceiling),
            timeout_seconds=command.timeout_seconds,
            secret_headers=frozenset(name.lower() for name in secret_headers),
            follow_redirects=node.follow_redirects,
        )
        return await self._caller.send(request, await self._tenants.network_policy(command.tenant_id))

    async def webhook(self, command: ExecuteNode) -> Outcome:
        node = WebhookOutInput.model_validate(command.input)
        body = compact_json(node.payload)
        signature: dict[str, str] = {}
        if node.secret_credential is not None:
            secret = await self._tenants.credential(command.tenant_id, node.secret_credential, "hmac")
            assert isinstance(secret, HmacSecret)
            signature = {
                SIGNATURE_HEADER: webhook_signature(secret.secret, int(self._clock().timestamp()), body)
            }
        headers = merge_headers(
            {"User-Agent": USER_AGENT},
            node.headers,
            {
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key(command.run_id, command.node_id, command.attempt),
            },
            signature,
        )
        request = OutgoingRequest(
            method="POST",
            url=node.url,
            headers=headers,
            content=body,
            response_cap_bytes=min(node.response_cap_bytes, self._cap_ceiling),
            timeout_seconds=command.timeout_seconds,
            # A signed delivery goes where it was addressed or fails; a redirect would re-send it
            # elsewhere, or turn it into a GET without its body.
            follow_redirects=False,
        )
        return await self._caller.send(request, await self._tenants.network_policy(command.tenant_id))
