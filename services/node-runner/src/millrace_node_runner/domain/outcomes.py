"""What running a node comes to: its output, or a typed error. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.node_errors import NodeErrorType


@dataclass(frozen=True)
class Succeeded:
    output: JsonObject


@dataclass(frozen=True)
class Failed:
    error: NodeError


Outcome = Succeeded | Failed


def failed(
    error_type: NodeErrorType, message: str, *, retryable: bool, retry_after_seconds: float | None = None
) -> Failed:
    """A failure of one of the known types (``millrace_common.contracts.node_errors``, listed in the docs)."""
    return Failed(
        NodeError(
            type=error_type, message=message, retryable=retryable, retry_after_seconds=retry_after_seconds
        )
    )


class NodeRefused(Exception):
    """Raised inside a transaction to roll it back and end the node with ``outcome``."""

    def __init__(self, outcome: Failed) -> None:
        super().__init__(outcome.error.message)
        self.outcome = outcome
