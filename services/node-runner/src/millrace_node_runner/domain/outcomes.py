"""How a node's raw result becomes its output or a typed error. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass

from millrace_common.messages.envelope import JsonObject
from millrace_common.messages.node_commands import NodeError


@dataclass(frozen=True)
class Succeeded:
    output: JsonObject


@dataclass(frozen=True)
class Failed:
    error: NodeError


Outcome = Succeeded | Failed


def http_outcome(status: int, headers: dict[str, str], body: bytes, *, truncated: bool) -> Outcome:
    """2xx and 3xx succeed; 5xx and 429 are retryable failures; other 4xx are not retryable.

    Error messages never echo the response body: it may come from an internal target."""
    if status >= 500 or status == 429:
        retry_after = headers.get("retry-after")
        hint = f" (Retry-After: {retry_after})" if retry_after else ""
        return Failed(NodeError(type="http_status", message=f"server answered {status}{hint}", retryable=True))
    if status >= 400:
        return Failed(NodeError(type="http_status", message=f"server answered {status}", retryable=False))
    content_type = headers.get("content-type", "")
    parsed: object
    if "json" in content_type and not truncated:
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode(errors="replace")
    else:
        parsed = body.decode(errors="replace")
    return Succeeded({"status": status, "headers": headers, "body": parsed, "truncated": truncated})
