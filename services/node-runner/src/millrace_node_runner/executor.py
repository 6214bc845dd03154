"""Runs one node command and turns its outcome into the result message."""

from __future__ import annotations

import asyncio
import time

from pydantic import ValidationError

from millrace_common.messages.node_commands import ExecuteNode, NodeError, NodeFailedResult, NodeSucceededResult

from millrace_node_runner.adapters.http import HttpRequester, HttpRequestInput
from millrace_node_runner.domain.outcomes import Failed, Outcome, Succeeded


class NodeExecutor:
    def __init__(self, http: HttpRequester) -> None:
        self._http = http

    async def execute(self, command: ExecuteNode) -> NodeSucceededResult | NodeFailedResult:
        started = time.perf_counter()
        try:
            outcome = await asyncio.wait_for(self._dispatch(command), timeout=command.timeout_seconds)
        except TimeoutError:
            outcome = Failed(
                NodeError(type="timeout", message=f"node exceeded {command.timeout_seconds:g} s", retryable=True)
            )
        except ValidationError as error:
            outcome = Failed(NodeError(type="invalid_input", message=str(error)[:500], retryable=False))
        duration_ms = (time.perf_counter() - started) * 1000
        common = {
            "tenant_id": command.tenant_id,
            "correlation_id": command.run_id,
            "causation_id": command.message_id,
            "run_id": command.run_id,
            "node_id": command.node_id,
            "attempt": command.attempt,
            "duration_ms": duration_ms,
        }
        if isinstance(outcome, Succeeded):
            return NodeSucceededResult(output=outcome.output, **common)
        return NodeFailedResult(error=outcome.error, **common)

    async def _dispatch(self, command: ExecuteNode) -> Outcome:
        if command.node_type == "http_request":
            request = HttpRequestInput.model_validate(command.input)
            key = f"{command.run_id}:{command.node_id}:{command.attempt}"
            return await self._http.perform(request, key)
        return Failed(
            NodeError(type="unsupported_node", message=f"no runner for node type {command.node_type!r}", retryable=False)
        )
