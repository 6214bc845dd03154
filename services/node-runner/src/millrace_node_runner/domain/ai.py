"""AI nodes as decisions: the chat request each type makes, how its answer is judged, what identical
input means, and the tenant's monthly token budget. Pure."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Protocol

import jsonschema_rs
from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.node_errors import NodeErrorType
from pydantic import JsonValue

from millrace_node_runner.domain.inputs import AiAnalysisInput, AiClassificationInput, AiPromptInput
from millrace_node_runner.domain.outcomes import Outcome, Succeeded, failed

AiInput = AiPromptInput | AiAnalysisInput | AiClassificationInput

ANALYSIS_INSTRUCTIONS = (
    "Answer with one JSON object and nothing else. It must match this JSON Schema:\n{schema}"
)
CLASSIFICATION_INSTRUCTIONS = (
    "Classify the text into exactly one of these labels: {labels}.\n"
    'Answer with one JSON object and nothing else: {{"label": one of the labels, exactly as written, '
    '"confidence": a number from 0 to 1, "reasoning": one or two sentences}}.'
)
_FENCED = re.compile(r"^\s*```(?:json)?\s*(.*?)\s*```\s*$", re.DOTALL | re.IGNORECASE)
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class AiSettings:
    """A tenant's AI endpoint and defaults (the key stays with the adapter, decrypted only to call)."""

    base_url: str
    model: str
    temperature: float
    max_tokens: int
    monthly_token_budget: int | None
    allow_private_endpoint: bool


class CompletionRequest(Protocol):
    """What the chat endpoint sends: a node's request (:class:`ChatRequest`) or an agent's turn."""

    @property
    def model(self) -> str: ...
    @property
    def temperature(self) -> float: ...
    @property
    def max_tokens(self) -> int: ...
    @property
    def json_mode(self) -> bool: ...
    @property
    def tools(self) -> tuple[JsonObject, ...]: ...
    def message_dicts(self) -> list[JsonObject]: ...


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[tuple[str, str], ...]
    temperature: float
    max_tokens: int
    json_mode: bool
    tools: tuple[JsonObject, ...] = ()

    def message_dicts(self) -> list[JsonObject]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_json(self) -> JsonObject:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for: its id, the tool's name, and the arguments as the model wrote them."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatAnswer:
    content: str | None
    model: str
    finish_reason: str | None
    usage: Usage
    tool_calls: tuple[ToolCall, ...] = ()


def chat_request(node: AiInput, settings: AiSettings) -> ChatRequest:
    """The node's own model, temperature and token limit win over the tenant's defaults."""
    system = node.system
    user: str
    json_mode = False
    if isinstance(node, AiAnalysisInput):
        schema = json.dumps(node.output_schema, sort_keys=True)
        system = _join(system, ANALYSIS_INSTRUCTIONS.format(schema=schema))
        user = node.prompt
        json_mode = True
    elif isinstance(node, AiClassificationInput):
        system = _join(system, CLASSIFICATION_INSTRUCTIONS.format(labels=json.dumps(list(node.labels))))
        user = _join(node.prompt, f"Text:\n{node.text}")
        json_mode = True
    else:
        user = node.prompt
    messages = ((("system", system),) if system else ()) + (("user", user),)
    return ChatRequest(
        model=node.model or settings.model,
        messages=messages,
        temperature=node.temperature if node.temperature is not None else settings.temperature,
        max_tokens=node.max_tokens or settings.max_tokens,
        json_mode=json_mode,
    )


def _join(first: str | None, second: str) -> str:
    return f"{first}\n\n{second}" if first else second


def answer_key(node_type: str, base_url: str, request: ChatRequest, node: AiInput) -> str:
    """Identical input inside one run means the same endpoint, model, settings, messages, and (for
    analysis and classification) the same schema or labels."""
    shape: JsonValue = None
    if isinstance(node, AiAnalysisInput):
        shape = node.output_schema
    elif isinstance(node, AiClassificationInput):
        shape = list(node.labels)
    material = {
        "type": node_type,
        "endpoint": base_url.rstrip("/"),
        "model": request.model,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "json": request.json_mode,
        "messages": [list(m) for m in request.messages],
        "shape": shape,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def interpret(node: AiInput, answer: ChatAnswer) -> Outcome:
    """The node's output from the model's answer; an answer that breaks the node's contract is a
    retryable ``ai_invalid_answer`` (another attempt may well answer properly)."""
    meta: JsonObject = {
        "model": answer.model,
        "finish_reason": answer.finish_reason,
        "usage": answer.usage.as_json(),
        "cached": False,
    }
    content = answer.content or ""
    if isinstance(node, AiPromptInput):
        return Succeeded({"text": content, **meta})
    parsed = _json_object(content)
    if parsed is None:
        return _invalid("the answer is not a JSON object")
    if isinstance(node, AiAnalysisInput):
        problem = schema_problem(node.output_schema, parsed)
        if problem is not None:
            return _invalid(f"the answer does not match the output schema: {problem}")
        return Succeeded({"data": parsed, **meta})
    return _classification(node, parsed, meta)


def _classification(node: AiClassificationInput, parsed: JsonObject, meta: JsonObject) -> Outcome:
    label = parsed.get("label")
    by_folded = {known.strip().casefold(): known for known in node.labels}
    chosen = by_folded.get(label.strip().casefold()) if isinstance(label, str) else None
    if chosen is None:
        return _invalid(f"the label {_shown(label)} is not one of {json.dumps(list(node.labels))}")
    confidence = parsed.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, int | float) or not 0 <= confidence <= 1:
        return _invalid(f"the confidence {_shown(confidence)} is not a number from 0 to 1")
    reasoning = parsed.get("reasoning", "")
    if not isinstance(reasoning, str):
        return _invalid("the reasoning is not text")
    return Succeeded({"label": chosen, "confidence": float(confidence), "reasoning": reasoning, **meta})


def _invalid(reason: str) -> Outcome:
    return failed(NodeErrorType.AI_INVALID_ANSWER, reason[:MAX_REASON_CHARS], retryable=True)


def _shown(value: JsonValue) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:60] + "…"


def _json_object(content: str) -> JsonObject | None:
    fenced = _FENCED.match(content)
    text = fenced.group(1) if fenced else content
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> jsonschema_rs.Validator:
    return jsonschema_rs.validator_for(json.loads(schema_json))


def unusable_schema(node: AiInput) -> Outcome | None:
    """An analysis whose schema cannot validate anything is refused before it costs a call."""
    if not isinstance(node, AiAnalysisInput):
        return None
    try:
        _validator(json.dumps(node.output_schema, sort_keys=True))
    except ValueError as error:
        first_line = str(error).splitlines()[0] if str(error) else "invalid"
        return failed(
            NodeErrorType.INVALID_INPUT,
            f"the output schema is not usable: {first_line}"[:MAX_REASON_CHARS],
            retryable=False,
        )
    return None


def schema_problem(schema: JsonObject, instance: JsonValue) -> str | None:
    """The first few ways ``instance`` breaks ``schema`` (JSON pointer and message), or None."""
    validator = _validator(json.dumps(schema, sort_keys=True))
    problems = []
    for error in validator.iter_errors(instance):
        pointer = "/" + "/".join(str(p) for p in error.instance_path)
        problems.append(f"{pointer}: {error.message}")
        if len(problems) == 3:
            break
    return "; ".join(problems) or None


def cached_output(output: JsonObject) -> JsonObject:
    return {**output, "cached": True}


def usage_node_id(node_id: str) -> str:
    """The node instance a call's tokens count for: an agent's turn ``K#m3`` counts for ``K``."""
    return node_id.split("#", 1)[0]


# -- budget -----------------------------------------------------------------------------------------


def month_of(moment: datetime) -> date:
    """Budgets run per calendar month in UTC."""
    return date(moment.year, moment.month, 1)


def budget_refusal(budget: int | None, used: int, month: date) -> Outcome | None:
    """A call is refused once the month's tokens reach the budget; the call that crosses it is paid,
    so a month can end at most one call above its budget."""
    if budget is None or used < budget:
        return None
    return failed(
        NodeErrorType.AI_BUDGET_EXCEEDED,
        f"the tenant's monthly AI token budget of {budget} tokens is used up "
        f"({used} used in {month:%Y-%m}); raise it in the AI settings or wait for next month",
        retryable=False,
    )
