"""The code node: the node's Python run in the sandbox (``millrace_common.platform.code_sandbox``),
over the template context the orchestrator sent, with the clock at the moment it was scheduled."""

from __future__ import annotations

from millrace_common.contracts.messages.node_commands import ExecuteNode
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.platform.code_sandbox import CodeFailure, CodeOutcome, CodeSandbox

from millrace_node_runner.domain.inputs import CodeInput
from millrace_node_runner.domain.outcomes import Outcome, Succeeded, failed


def code_outcome(outcome: CodeOutcome) -> Outcome:
    """The node's outcome for what the sandbox reported."""
    if isinstance(outcome, CodeFailure):
        return _code_failed(outcome.error_type, outcome.message)
    return Succeeded({"result": outcome.result, "printed": outcome.printed})


def _code_failed(error_type: NodeErrorType, message: str) -> Outcome:
    # Each type named here, as everywhere a node error is made (the docs list them; a unit test holds it).
    match error_type:
        case NodeErrorType.CODE_CRASHED:
            return failed(NodeErrorType.CODE_CRASHED, message, retryable=True)
        case NodeErrorType.CODE_SYNTAX:
            return failed(NodeErrorType.CODE_SYNTAX, message, retryable=False)
        case NodeErrorType.CODE_FORBIDDEN:
            return failed(NodeErrorType.CODE_FORBIDDEN, message, retryable=False)
        case NodeErrorType.CODE_TIMEOUT:
            return failed(NodeErrorType.CODE_TIMEOUT, message, retryable=False)
        case NodeErrorType.CODE_MEMORY_LIMIT:
            return failed(NodeErrorType.CODE_MEMORY_LIMIT, message, retryable=False)
        case NodeErrorType.CODE_RECURSION_LIMIT:
            return failed(NodeErrorType.CODE_RECURSION_LIMIT, message, retryable=False)
        case NodeErrorType.CODE_OUTPUT:
            return failed(NodeErrorType.CODE_OUTPUT, message, retryable=False)
        case _:
            return failed(NodeErrorType.CODE_ERROR, message, retryable=False)


class CodeNodes:
    def __init__(self, sandbox: CodeSandbox) -> None:
        self._sandbox = sandbox

    async def run(self, command: ExecuteNode) -> Outcome:
        node = CodeInput.model_validate(command.input)
        return code_outcome(await self._sandbox.run(node.code, node.context, now=command.occurred_at))
