"""What a node type plugin's handler uses of the node runner, in one place: the command it is given,
the outcome it returns, the typed errors, and outgoing HTTP under the tenant's network policy.

A plugin's handler factory (named by its ``NodeType.handler``) is called once when the runner starts::

    def build(services: PluginServices) -> NodeHandler:
        async def handle(command: ExecuteNode) -> Outcome:
            ...
        return handle

``docs/node-reference.md`` ("Node types as plugins") describes the contract; ``plugins/chat`` is an
example.
"""

from __future__ import annotations

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.node_commands import ExecuteNode
from millrace_common.contracts.node_errors import NodeErrorType

from millrace_node_runner.adapters.http import OutgoingRequest
from millrace_node_runner.domain.http import compact_json, idempotency_key, merge_headers
from millrace_node_runner.domain.outcomes import Failed, NodeRefused, Outcome, Succeeded, failed
from millrace_node_runner.service_layer.http import USER_AGENT
from millrace_node_runner.service_layer.plugins import GuardedHttp, NodeHandler, PluginServices

__all__ = [
    "USER_AGENT",
    "ExecuteNode",
    "Failed",
    "GuardedHttp",
    "JsonObject",
    "NodeErrorType",
    "NodeHandler",
    "NodeRefused",
    "Outcome",
    "OutgoingRequest",
    "PluginServices",
    "Succeeded",
    "compact_json",
    "failed",
    "idempotency_key",
    "merge_headers",
]
