"""Runs one node command within its timeout and turns what happened into its result message."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping

from millrace_common.contracts.limits import MAX_PAYLOAD_BYTES, too_large
from millrace_common.contracts.messages.node_commands import (
    ExecuteNode,
    NodeFailedResult,
    NodeSucceededResult,
)
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.node_types import ENTRY_POINT_GROUP
from millrace_common.platform.kafka import describe_validation_error
from millrace_common.platform.outages import unreachable_dependency
from pydantic import ValidationError

from millrace_node_runner.domain.outcomes import Failed, NodeRefused, Outcome, Succeeded, failed

NodeHandler = Callable[[ExecuteNode], Awaitable[Outcome]]
NodeResult = NodeSucceededResult | NodeFailedResult
log = logging.getLogger(__name__)


def bounded(outcome: Outcome) -> Outcome:
    """A success whose output no message could carry is the node's ``too_large`` failure: reported at
    once as what it is, where a result Kafka refuses would only have timed out later."""
    if isinstance(outcome, Succeeded) and (size := too_large(outcome.output)) is not None:
        return failed(
            NodeErrorType.TOO_LARGE,
            f"the node's output is {size:,} bytes of JSON; a node's output may be at most "
            f"{MAX_PAYLOAD_BYTES:,} bytes (for an HTTP response, lower response_cap_bytes)",
            retryable=False,
        )
    return outcome


RESULT_IDS = frozenset(
    {"tenant_id", "correlation_id", "causation_id", "run_id", "node_id", "attempt", "duration_ms", "test"}
)
"""What a node's result carries besides its outcome: whose it is and what it answers."""


def result_of(command: ExecuteNode, outcome: Outcome, *, duration_ms: float) -> NodeResult:
    """The result that answers ``command`` with ``outcome``."""
    ids = {
        "tenant_id": command.tenant_id,
        "correlation_id": command.run_id,
        "causation_id": command.message_id,
        "run_id": command.run_id,
        "node_id": command.node_id,
        "attempt": command.attempt,
        "duration_ms": duration_ms,
        "test": command.test,
    }
    if isinstance(outcome, Succeeded):
        return NodeSucceededResult(output=outcome.output, **ids)
    return NodeFailedResult(error=outcome.error, **ids)


def failed_instead(result: NodeResult, outcome: Failed) -> NodeFailedResult:
    """``result`` turned into the failure ``outcome``: same run, node, attempt and cause."""
    return NodeFailedResult(error=outcome.error, **result.model_dump(include=set(RESULT_IDS)))


class NodeExecutor:
    def __init__(self, handlers: Mapping[str, NodeHandler]) -> None:
        self._handlers = dict(handlers)

    @property
    def node_types(self) -> frozenset[str]:
        return frozenset(self._handlers)

    async def execute(self, command: ExecuteNode) -> NodeResult:
        started = time.perf_counter()
        outcome = bounded(await self._outcome(command))
        return result_of(command, outcome, duration_ms=(time.perf_counter() - started) * 1000)

    async def _outcome(self, command: ExecuteNode) -> Outcome:
        handler = self._handlers.get(command.node_type)
        if handler is None:
            return failed(
                NodeErrorType.UNSUPPORTED_NODE,
                f"this runner has no handler for the node type {command.node_type!r}: the package that "
                f"adds it (a '{ENTRY_POINT_GROUP}' plugin) is not installed here",
                retryable=False,
            )
        try:
            return await asyncio.wait_for(handler(command), timeout=command.timeout_seconds)
        except TimeoutError:
            return failed(
                NodeErrorType.TIMEOUT,
                f"the node did not finish within {command.timeout_seconds:g} s",
                retryable=True,
            )
        except ValidationError as error:
            return failed(
                NodeErrorType.INVALID_INPUT, describe_validation_error(error)[:1000], retryable=False
            )
        except NodeRefused as refused:
            return refused.outcome
        except Exception as error:
            if unreachable_dependency(error) is not None:
                # PostgreSQL or Kafka is away: not the node's failure, so no attempt is spent on it;
                # the consumer waits the outage out and runs the same attempt again.
                raise
            # A fault of the runner, not of the node: retryable, and its details stay in the runner's
            # log (they may name internal hosts).
            log.exception("node failed inside the runner")
            return failed(
                NodeErrorType.RUNNER_ERROR, f"the runner failed ({type(error).__name__})", retryable=True
            )
