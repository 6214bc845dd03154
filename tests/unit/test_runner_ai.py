"""AI node decisions: the request each type makes, how answers are judged, identical input, budgets."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_node_runner.domain.ai import (
    AiSettings,
    ChatAnswer,
    Usage,
    answer_key,
    budget_refusal,
    chat_request,
    interpret,
    month_of,
    schema_problem,
    unusable_schema,
)
from millrace_node_runner.domain.inputs import AiAnalysisInput, AiClassificationInput, AiPromptInput
from millrace_node_runner.domain.outcomes import Failed, Succeeded

pytestmark = pytest.mark.unit

SETTINGS = AiSettings(
    base_url="https://llm.test/v1",
    model="tenant-model",
    temperature=0.2,
    max_tokens=512,
    monthly_token_budget=None,
    allow_private_endpoint=False,
)
SCHEMA = {
    "type": "object",
    "properties": {
        "sentiment": {"type": "string", "enum": ["positive", "negative"]},
        "score": {"type": "number"},
    },
    "required": ["sentiment", "score"],
}
LABELS = ("Sales", "Support", "Spam")


def answer(content: str) -> ChatAnswer:
    return ChatAnswer(content=content, model="m-1", finish_reason="stop", usage=Usage(12, 3))


def test_a_prompt_uses_the_tenants_defaults_unless_the_node_sets_its_own():
    plain = chat_request(AiPromptInput(prompt="Hi"), SETTINGS)
    tuned = chat_request(
        AiPromptInput(prompt="Hi", system="Be brief", model="big", temperature=0, max_tokens=9), SETTINGS
    )

    assert (plain.model, plain.temperature, plain.max_tokens, plain.json_mode) == (
        "tenant-model",
        0.2,
        512,
        False,
    )
    assert plain.message_dicts() == [{"role": "user", "content": "Hi"}]
    assert (tuned.model, tuned.temperature, tuned.max_tokens) == ("big", 0, 9)
    assert tuned.messages[0] == ("system", "Be brief")


def test_analysis_asks_for_json_matching_the_schema_and_classification_for_a_listed_label():
    analysis = chat_request(AiAnalysisInput(prompt="Rate: great", output_schema=SCHEMA), SETTINGS)
    classify = chat_request(
        AiClassificationInput(text="buy now", labels=LABELS, prompt="Route mail"), SETTINGS
    )

    assert analysis.json_mode and json.dumps(SCHEMA, sort_keys=True) in analysis.messages[0][1]
    assert classify.json_mode and '["Sales", "Support", "Spam"]' in classify.messages[0][1]
    assert classify.messages[1] == ("user", "Route mail\n\nText:\nbuy now")


def test_a_prompt_answer_is_its_text_with_model_and_usage():
    assert interpret(AiPromptInput(prompt="Hi"), answer("Hello!")) == Succeeded(
        {
            "text": "Hello!",
            "model": "m-1",
            "finish_reason": "stop",
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
            "cached": False,
        }
    )


def test_an_analysis_answer_that_matches_the_schema_is_the_data():
    node = AiAnalysisInput(prompt="x", output_schema=SCHEMA)

    result = interpret(node, answer('```json\n{"sentiment": "positive", "score": 0.9}\n```'))

    assert result.output["data"] == {"sentiment": "positive", "score": 0.9}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("not json", "the answer is not a JSON object"),
        ("[1, 2]", "the answer is not a JSON object"),
        ('{"sentiment": "meh", "score": 1}', '/sentiment: "meh" is not one of'),
        ('{"sentiment": "positive"}', '/: "score" is a required property'),
    ],
)
def test_an_analysis_answer_that_breaks_the_schema_is_a_retryable_error_with_the_reason(
    content: str, reason: str
):
    result = interpret(AiAnalysisInput(prompt="x", output_schema=SCHEMA), answer(content))

    assert isinstance(result, Failed)
    assert result.error.type == "ai_invalid_answer" and result.error.retryable
    assert reason in result.error.message


def test_a_classification_label_is_matched_to_the_list_ignoring_case_and_spaces():
    node = AiClassificationInput(text="t", labels=LABELS)

    result = interpret(
        node, answer('{"label": " support ", "confidence": 0.8, "reasoning": "asks for help"}')
    )

    assert (result.output["label"], result.output["confidence"], result.output["reasoning"]) == (
        "Support",
        0.8,
        "asks for help",
    )


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            '{"label": "Billing", "confidence": 0.9}',
            'the label "Billing" is not one of ["Sales", "Support", "Spam"]',
        ),
        ('{"label": "Spam", "confidence": 7}', "the confidence 7 is not a number from 0 to 1"),
        ('{"label": "Spam", "confidence": true}', "the confidence true is not a number from 0 to 1"),
        ('{"label": "Spam", "confidence": 0.5, "reasoning": 3}', "the reasoning is not text"),
    ],
)
def test_a_classification_outside_the_contract_is_retryable(content: str, reason: str):
    result = interpret(AiClassificationInput(text="t", labels=LABELS), answer(content))

    assert isinstance(result, Failed) and result.error.retryable and result.error.message == reason


def test_identical_input_has_one_key_and_any_difference_another():
    node = AiPromptInput(prompt="Summarise")
    request = chat_request(node, SETTINGS)
    key = answer_key("ai_prompt", SETTINGS.base_url, request, node)

    assert key == answer_key(
        "ai_prompt", SETTINGS.base_url + "/", chat_request(AiPromptInput(prompt="Summarise"), SETTINGS), node
    )
    other = AiPromptInput(prompt="Summarise", temperature=1)
    assert key != answer_key("ai_prompt", SETTINGS.base_url, chat_request(other, SETTINGS), other)
    assert key != answer_key("ai_prompt", "https://other.test/v1", request, node)
    first = AiClassificationInput(text="t", labels=("a", "b"))
    second = AiClassificationInput(text="t", labels=("a", "c"))
    assert answer_key("ai_classification", "u", chat_request(first, SETTINGS), first) != answer_key(
        "ai_classification", "u", chat_request(second, SETTINGS), second
    )


def test_the_budget_refuses_once_the_months_tokens_reach_it():
    month = month_of(datetime(2026, 11, 30, 23, 59, tzinfo=UTC))

    assert month == date(2026, 11, 1)
    assert budget_refusal(None, 10**9, month) is None
    assert budget_refusal(1000, 999, month) is None
    refused = budget_refusal(1000, 1000, month)
    assert isinstance(refused, Failed) and not refused.error.retryable
    assert refused.error.type == "ai_budget_exceeded"
    assert refused.error.message.startswith(
        "the tenant's monthly AI token budget of 1000 tokens is used up (1000 used in 2026-11)"
    )


@given(st.integers(1, 10**9), st.integers(0, 10**9))
def test_the_budget_allows_exactly_the_usage_below_it(budget: int, used: int):
    assert (budget_refusal(budget, used, date(2026, 1, 1)) is None) == (used < budget)


def test_schema_problems_name_the_place():
    assert schema_problem(SCHEMA, {"sentiment": "negative", "score": 1}) is None
    assert (
        schema_problem(SCHEMA, {"sentiment": "negative", "score": "high"})
        == '/score: "high" is not of type "number"'
    )


def test_a_schema_that_cannot_validate_is_refused_before_any_call():
    node = AiAnalysisInput(
        prompt="x", output_schema={"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}
    )

    refused = unusable_schema(node)

    assert isinstance(refused, Failed) and not refused.error.retryable
    assert refused.error.message == 'the output schema is not usable: "(" is not a "regex"'
    assert unusable_schema(AiAnalysisInput(prompt="x", output_schema=SCHEMA)) is None


def test_the_runner_starts_without_the_ai_sdk() -> None:
    """The OpenAI SDK (about 25 MB resident) is imported at the first AI call, not at start."""
    import subprocess
    import sys

    probe = "import sys, millrace_node_runner.bootstrap; print('openai' in sys.modules)"
    answer = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert answer.stdout.strip() == "False"
