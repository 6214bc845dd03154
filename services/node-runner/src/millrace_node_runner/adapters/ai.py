"""Chat completions against a tenant's OpenAI-compatible endpoint, through the guarded HTTP clients:
an endpoint the tenant may not reach is refused before a connection exists, so it never sees the key."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from millrace_common.contracts.node_errors import NodeErrorType

from millrace_node_runner.adapters.network import GuardedClients, TargetRefused
from millrace_node_runner.domain.addresses import TargetPolicy, refuse_url
from millrace_node_runner.domain.ai import AiSettings, ChatAnswer, CompletionRequest, ToolCall, Usage
from millrace_node_runner.domain.http import retry_after_seconds
from millrace_node_runner.domain.outcomes import Failed, failed

if TYPE_CHECKING:
    import openai

Clock = Callable[[], datetime]


def _sdk() -> Any:
    """The OpenAI SDK, imported at the first AI call rather than at start: its types package is about
    25 MB of resident memory and half a second of imports, which a runner that never runs an AI node
    should not carry (docs/benchmarks.md, memory)."""
    return importlib.import_module("openai")


class ChatEndpoint:
    def __init__(self, clients: GuardedClients, clock: Clock) -> None:
        self._clients = clients
        self._clock = clock

    async def complete(
        self, settings: AiSettings, api_key: str | None, request: CompletionRequest, timeout_seconds: float
    ) -> ChatAnswer | Failed:
        policy = TargetPolicy(allow_private=settings.allow_private_endpoint)
        refusal = refuse_url(settings.base_url, policy)
        if refusal is not None:
            return failed(
                NodeErrorType.TARGET_NOT_ALLOWED, f"the AI endpoint: {refusal.reason}", retryable=False
            )
        openai = _sdk()
        async with self._clients.client(policy) as http_client:
            client = openai.AsyncOpenAI(
                base_url=settings.base_url,
                # Always explicit, so the SDK never falls back to an OPENAI_API_KEY of the runner's own.
                api_key=api_key or "none",
                organization=None,
                project=None,
                max_retries=0,
                timeout=timeout_seconds,
                http_client=http_client,
            )
            try:
                completion = await client.chat.completions.create(
                    model=request.model,
                    messages=request.message_dicts(),  # type: ignore[arg-type]
                    temperature=request.temperature,
                    max_tokens=request.max_tokens,
                    response_format={"type": "json_object"} if request.json_mode else openai.omit,
                    tools=list(request.tools) if request.tools else openai.omit,
                )
            except TargetRefused as refused:
                return failed(
                    NodeErrorType.TARGET_NOT_ALLOWED, f"the AI endpoint: {refused.reason}", retryable=False
                )
            except openai.APITimeoutError:
                return failed(
                    NodeErrorType.TIMEOUT,
                    f"the AI endpoint gave no answer within {timeout_seconds:g} s",
                    retryable=True,
                )
            except openai.APIConnectionError as error:
                cause = error.__cause__
                if isinstance(cause, TargetRefused):
                    return failed(
                        NodeErrorType.TARGET_NOT_ALLOWED, f"the AI endpoint: {cause.reason}", retryable=False
                    )
                return failed(NodeErrorType.CONNECTION, "could not reach the AI endpoint", retryable=True)
            except openai.APIStatusError as error:
                return self._status_failure(error)
            except openai.APIError as error:
                return failed(
                    NodeErrorType.AI_ERROR,
                    f"the AI endpoint's answer could not be read ({type(error).__name__})",
                    retryable=True,
                )
        if not completion.choices:
            return failed(
                NodeErrorType.AI_INVALID_ANSWER, "the AI endpoint answered without a choice", retryable=True
            )
        choice = completion.choices[0]
        usage = completion.usage
        return ChatAnswer(
            content=choice.message.content,
            model=completion.model or request.model,
            finish_reason=choice.finish_reason,
            usage=Usage(usage.prompt_tokens, usage.completion_tokens) if usage is not None else Usage(),
            tool_calls=tuple(_tool_call(call) for call in choice.message.tool_calls or ()),
        )

    def _status_failure(self, error: openai.APIStatusError) -> Failed:
        """The status only: an error body may come from an internal target, so it is never echoed."""
        status = error.status_code
        if status == 429 or status >= 500:
            wait = retry_after_seconds(error.response.headers.get("retry-after"), self._clock())
            return failed(
                NodeErrorType.AI_STATUS,
                f"the AI endpoint answered {status}",
                retryable=True,
                retry_after_seconds=wait,
            )
        return failed(NodeErrorType.AI_STATUS, f"the AI endpoint answered {status}", retryable=False)


def _tool_call(call: Any) -> ToolCall:
    """A function call as the model made it. A custom tool call (a newer kind with free text for its
    input, which the agent never offers) keeps its name and text, judged like any call's arguments."""
    if call.type == "function":
        return ToolCall(call.id, call.function.name, call.function.arguments)
    return ToolCall(call.id, call.custom.name, call.custom.input)
