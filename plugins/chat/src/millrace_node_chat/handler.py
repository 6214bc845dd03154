"""The ``chat_message`` handler, built by the node runner from :func:`build`: the message as JSON,
POSTed through the runner's guarded HTTP (the tenant's network policy holds, as for ``http_request``)."""

from __future__ import annotations

from millrace_node_runner.plugin_api import (
    USER_AGENT,
    ExecuteNode,
    NodeHandler,
    Outcome,
    OutgoingRequest,
    PluginServices,
    Succeeded,
    compact_json,
    idempotency_key,
)
from pydantic import BaseModel, ConfigDict, Field

RESPONSE_CAP_BYTES = 64 * 1024


class ChatMessageInput(BaseModel):
    """The node's rendered input (its config; the fields it does not use are ignored)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    url: str = Field(min_length=1, max_length=8192)
    text: str = Field(min_length=1, max_length=40_000)
    username: str | None = Field(default=None, max_length=200)
    channel: str | None = Field(default=None, max_length=200)


def message(node: ChatMessageInput) -> dict[str, str]:
    """What the chat is sent: ``text``, with ``username`` and ``channel`` when set."""
    body = {"text": node.text}
    if node.username:
        body["username"] = node.username
    if node.channel:
        body["channel"] = node.channel
    return body


def build(services: PluginServices) -> NodeHandler:
    async def post(command: ExecuteNode) -> Outcome:
        node = ChatMessageInput.model_validate(command.input)
        request = OutgoingRequest(
            method="POST",
            url=node.url,
            headers={
                "User-Agent": USER_AGENT,
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key(command.run_id, command.node_id, command.attempt),
            },
            content=compact_json(message(node)),
            response_cap_bytes=RESPONSE_CAP_BYTES,
            timeout_seconds=command.timeout_seconds,
            # A message goes where it was addressed or fails; a redirect would drop or re-send it.
            follow_redirects=False,
        )
        outcome = await services.http.send(command.tenant_id, request)
        if isinstance(outcome, Succeeded):
            answer = outcome.output
            return Succeeded({"delivered": True, "status": answer["status"], "body": answer["body"]})
        return outcome

    return post
