"""``ai_prompt``, ``ai_analysis`` and ``ai_classification``: the stored answer when the run asked the
same before, else the budget check, the call, the tokens recorded, and the answer judged."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from millrace_common.contracts.messages.node_commands import ExecuteNode
from millrace_common.contracts.node_errors import NodeErrorType
from prometheus_client import CollectorRegistry

from millrace_node_runner.adapters.ai import ChatEndpoint
from millrace_node_runner.adapters.ai_ledger import AiLedger
from millrace_node_runner.adapters.tenants import AiEndpoint, TenantConfig
from millrace_node_runner.domain.ai import (
    AiInput,
    ChatAnswer,
    CompletionRequest,
    answer_key,
    budget_refusal,
    cached_output,
    chat_request,
    interpret,
    month_of,
    unusable_schema,
    usage_node_id,
)
from millrace_node_runner.domain.inputs import AiAnalysisInput, AiClassificationInput, AiPromptInput
from millrace_node_runner.domain.outcomes import Failed, Outcome, Succeeded, failed
from millrace_node_runner.metrics import AiMetrics

Clock = Callable[[], datetime]
Judge = Callable[[ChatAnswer], Outcome]
INPUT_MODELS: dict[str, type[AiInput]] = {
    "ai_prompt": AiPromptInput,
    "ai_analysis": AiAnalysisInput,
    "ai_classification": AiClassificationInput,
}


class AiCalls:
    """One paid call of a node's: answered from the run's stored answers when it asked the same
    before, else within the tenant's monthly budget, with its tokens and its output recorded."""

    def __init__(
        self, endpoint: ChatEndpoint, ledger: AiLedger, clock: Clock, metrics: AiMetrics | None = None
    ) -> None:
        self._endpoint = endpoint
        self._ledger = ledger
        self._clock = clock
        # Without a registry of the service's (as in tests), counted on one of its own.
        self._metrics = metrics or AiMetrics(CollectorRegistry())

    async def answer(
        self,
        command: ExecuteNode,
        configured: AiEndpoint,
        request: CompletionRequest,
        key: str,
        judge: Judge,
    ) -> Outcome:
        stored = await self._ledger.stored_answer(command.run_id, key)
        if stored is not None:
            return Succeeded(cached_output(stored))
        month = month_of(self._clock())
        used = await self._ledger.tokens_used(command.tenant_id, month)
        refusal = budget_refusal(configured.settings.monthly_token_budget, used, month)
        if refusal is not None:
            return refusal
        answer = await self._endpoint.complete(
            configured.settings, configured.api_key, request, command.timeout_seconds
        )
        if isinstance(answer, Failed):
            return answer
        usage = answer.usage
        self._metrics.used(command.tenant_id, answer.model, usage.prompt_tokens, usage.completion_tokens)
        try:
            outcome = judge(answer)
        except ValueError as error:  # an answer the checks cannot read: still paid, so still recorded
            outcome = failed(
                NodeErrorType.AI_INVALID_ANSWER,
                f"the answer could not be read: {error}"[:500],
                retryable=True,
            )
        await self._ledger.record(
            tenant_id=command.tenant_id,
            run_id=command.run_id,
            workflow_id=command.workflow_id,
            node_id=usage_node_id(command.node_id),
            attempt=command.attempt,
            model=answer.model,
            usage=answer.usage,
            month=month,
            now=self._clock(),
            input_hash=key,
            output=outcome.output if isinstance(outcome, Succeeded) else None,
        )
        return outcome


class AiNodes:
    def __init__(self, tenants: TenantConfig, calls: AiCalls) -> None:
        self._tenants = tenants
        self._calls = calls

    async def run(self, command: ExecuteNode) -> Outcome:
        node = INPUT_MODELS[command.node_type].model_validate(command.input)
        if (refusal := unusable_schema(node)) is not None:
            return refusal
        configured = await self._tenants.ai_endpoint(command.tenant_id)
        request = chat_request(node, configured.settings)
        key = answer_key(command.node_type, configured.settings.base_url, request, node)
        return await self._calls.answer(command, configured, request, key, lambda a: interpret(node, a))
