"""Workflow definitions: React Flow JSON in, typed graph out, unsound graphs and bad configs refused."""

from __future__ import annotations

import pytest
from millrace_common.contracts.topics import (
    NODES_READY_AI,
    NODES_READY_HTTP,
    NODES_READY_OTHER,
    NODES_READY_RECORD,
)
from millrace_common.language.workflow import (
    CONFIG_MODELS,
    HANDLE_REQUIRED,
    NODE_CATEGORIES,
    NODE_MODELS,
    RUNNER_TOPICS,
    AiAnalysisConfig,
    AiClassificationConfig,
    ApprovalConfig,
    ConditionConfig,
    ForEachConfig,
    HttpRequestConfig,
    HttpRequestNode,
    RecordFindConfig,
    RetryPolicy,
    SetVariablesConfig,
    SwitchConfig,
    TriggerConfig,
    WaitDelayConfig,
    WorkflowDefinition,
    check_cron,
    node_type_schemas,
    source_handles,
)
from pydantic import ValidationError

from tests.unit.workflow_examples import every_node_type, minimal

pytestmark = pytest.mark.unit


def definition(nodes, edges):
    return {"nodes": nodes, "edges": edges}


TRIGGER = {
    "id": "t",
    "type": "trigger",
    "position": {"x": 0, "y": 0},
    "data": {"name": "T", "kind": "manual"},
}
END = {"id": "e", "type": "end", "data": {"name": "E"}}
TO_END = {"id": "x", "source": "t", "target": "e"}


def test_a_react_flow_definition_round_trips_with_its_aliases():
    raw = definition([TRIGGER, END], [{"id": "x", "source": "t", "target": "e", "sourceHandle": None}])
    parsed = WorkflowDefinition.model_validate(raw)
    assert parsed.trigger.id == "t"
    assert parsed.outgoing("t")[0].target == "e"
    dumped = parsed.model_dump(mode="json", by_alias=True)
    assert dumped["edges"][0]["sourceHandle"] is None
    assert WorkflowDefinition.model_validate(dumped) == parsed


def test_the_example_uses_every_node_type_and_round_trips():
    parsed = WorkflowDefinition.model_validate(every_node_type())

    assert {n.type for n in parsed.nodes} == set(NODE_MODELS)
    assert {n.id for n in parsed.body("each_similar")} == {"link", "pause", "drop_duplicate"}
    assert parsed.node("link").parent_id == "each_similar"
    assert WorkflowDefinition.model_validate(parsed.model_dump(mode="json", by_alias=True)) == parsed


@pytest.mark.parametrize(
    ("nodes", "edges", "reason"),
    [
        ([TRIGGER, END, END], [TO_END], "/nodes/2/id: duplicate node id 'e'"),
        (
            [TRIGGER, END],
            [{"id": "x", "source": "t", "target": "nowhere"}],
            "/edges/0/target: edge refers to unknown node 'nowhere'",
        ),
        ([END], [], "exactly one trigger node, found 0"),
        (
            [TRIGGER, END, {**END, "id": "f"}],
            [TO_END, {"id": "1", "source": "e", "target": "f"}, {"id": "2", "source": "f", "target": "e"}],
            "/edges/2: edge closes a cycle 'e' -> 'f' -> 'e'",
        ),
        ([TRIGGER, END], [], "/nodes/1: node 'e' cannot be reached from the trigger"),
    ],
)
def test_unsound_graphs_are_refused_with_the_reason(nodes, edges, reason):
    with pytest.raises(ValidationError, match=reason):
        WorkflowDefinition.model_validate(definition(nodes, edges))


def test_a_refused_graph_carries_its_problems_as_pointer_and_message():
    with pytest.raises(ValidationError) as refused:
        WorkflowDefinition.model_validate(definition([TRIGGER, END], []))

    (error,) = refused.value.errors()
    assert error["type"] == "unsound_workflow"
    assert error["ctx"]["problems"] == [
        {"pointer": "/nodes/1", "message": "node 'e' cannot be reached from the trigger"}
    ]


def test_the_existing_http_request_fields_keep_their_names_and_defaults():
    node = HttpRequestNode.model_validate(
        {"id": "h", "type": "http_request", "data": {"name": "H", "url": "https://x.test"}}
    )

    assert (node.data.method, node.data.headers, node.data.query, node.data.body) == ("GET", {}, {}, None)
    assert node.data.timeout_seconds == 30
    assert node.data.auth is None and node.data.body_type == "json"
    assert node.data.retry is None and node.data.on_error == "fail_run"


def test_every_side_effecting_type_goes_to_its_runner_class():
    assert {t for t, topic in RUNNER_TOPICS.items() if topic == NODES_READY_AI} == {
        "ai_prompt",
        "ai_analysis",
        "ai_classification",
        "ai_agent",
    }
    assert {t for t, topic in RUNNER_TOPICS.items() if topic == NODES_READY_HTTP} == {
        "http_request",
        "webhook_out",
    }
    assert {t for t, topic in RUNNER_TOPICS.items() if topic == NODES_READY_RECORD} == {
        "record_create",
        "record_update",
        "record_find",
        "record_delete",
    }
    assert {t for t, topic in RUNNER_TOPICS.items() if topic == NODES_READY_OTHER} == {
        "task_notify",
        "kafka_publish",
    }


def test_every_node_type_is_in_exactly_one_category():
    listed = [t for types in NODE_CATEGORIES.values() for t in types]
    assert sorted(listed) == sorted(NODE_MODELS)
    assert list(NODE_CATEGORIES) == [
        "Triggers",
        "AI",
        "Records",
        "Logic",
        "Flow",
        "External",
        "Kafka",
        "Human",
    ]


def test_node_type_schemas_describe_every_config_and_are_safe_to_change():
    schemas = node_type_schemas()

    assert set(schemas) == set(NODE_MODELS)
    assert all("name" in schema["properties"] for schema in schemas.values())
    assert "from" in str(schemas["trigger"]) and "cases" in schemas["switch"]["properties"]
    schemas["end"]["properties"].clear()
    assert node_type_schemas()["end"]["properties"]


def test_handles_follow_the_node_type_and_its_config():
    parsed = WorkflowDefinition.model_validate(every_node_type())

    assert source_handles(parsed.node("hot")) == {"true", "false"}
    assert source_handles(parsed.node("route")) == {"case:sales", "case:support", "default"}
    assert source_handles(parsed.node("approve")) == {"approved", "rejected", "timeout"}
    assert source_handles(parsed.node("each_similar")) == {"done"}
    assert source_handles(parsed.node("ticket")) == {"error"}
    assert source_handles(parsed.node("draft_reply")) == frozenset()
    assert source_handles(parsed.node("await_reply")) == {"event", "timeout"}
    assert HANDLE_REQUIRED == {"condition", "switch", "approval", "wait_for_event"}


def test_rendered_strings_are_the_templated_fields_and_condition_values():
    parsed = WorkflowDefinition.model_validate(every_node_type())

    assert dict(parsed.node("ticket").data.rendered_strings()) == {
        ("url",): "https://helpdesk.example.test/api/tickets",
        ("body", "subject"): "{{ trigger.record.data.email }}",
        ("body", "body"): "{{ nodes.draft_reply.output.text }}",
    }
    assert dict(parsed.node("similar").data.rendered_strings()) == {
        ("filters", "and", 0, "value"): "{{ trigger.record.data.company }}",
        ("filters", "and", 1, "value"): "{{ trigger.record.id }}",
    }
    assert dict(parsed.node("classify").data.rendered_strings()) == {
        ("text",): "{{ trigger.record.data.message }}"
    }


# -- config rules, model by model -------------------------------------------------------------------


def refusal(model, data) -> str:
    with pytest.raises(ValidationError) as refused:
        model.model_validate({"name": "N", **data})
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in refused.value.errors())


CONDITION = {"field": "trigger.record.data.x", "operator": "equals", "value": 1}


@pytest.mark.parametrize(
    ("model", "data", "reason"),
    [
        (
            HttpRequestConfig,
            {"url": "https://x.test", "timeout_seconds": 3601},
            "timeout_seconds: Input should be less than or equal to 3600",
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "on_error": "fallback"},
            'fallback_output: on_error "fallback" needs a fallback_output',
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "fallback_output": {}},
            'fallback_output: fallback_output is only used when on_error is "fallback"',
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "retry": {"max_attempts": 21}},
            "retry.max_attempts: Input should be less than or equal to 20",
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "retry": {"backoff_seconds": 10, "max_backoff_seconds": 5}},
            "max_backoff_seconds (5) is below backoff_seconds (10)",
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "retry": {"retry_on": ["*", "timeout"]}},
            '"*" retries every retryable error and stands alone',
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "retry": {"backoff_multiplier": 0.5}},
            "backoff_multiplier: Input should be greater than or equal to 1",
        ),
        (HttpRequestConfig, {"url": "ftp://x.test"}, "url: String should match pattern"),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "body_type": "form", "body": {"a": [1]}},
            "a form body is an object of scalar values",
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "body_type": "raw", "body": {"a": 1}},
            "a raw body is a string",
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "auth": {"type": "oauth", "credential": "c"}},
            "auth.type: Input should be 'bearer', 'basic' or 'header'",
        ),
        (
            TriggerConfig,
            {"kind": "field_changed"},
            'fields: a "field_changed" trigger watches at least one field',
        ),
        (
            TriggerConfig,
            {"kind": "manual", "fields": [{"field": "status"}]},
            'fields: fields only apply to "field_changed" triggers',
        ),
        (
            TriggerConfig,
            {"kind": "webhook", "pipeline_ids": ["leads"]},
            "pipeline_ids only apply to record triggers, not to 'webhook'",
        ),
        (
            TriggerConfig,
            {"kind": "webhook", "require_signature": True},
            "needs the secret_credential to check it with",
        ),
        (
            TriggerConfig,
            {"kind": "scheduled"},
            'a "scheduled" trigger needs schedules (or, as before, one cron expression)',
        ),
        (
            TriggerConfig,
            {"kind": "scheduled", "cron": "0 9 * * MON", "timezone": "Europe/Atlantis"},
            "timezone: 'Europe/Atlantis' is not an IANA time zone",
        ),
        (
            TriggerConfig,
            {"kind": "scheduled", "cron": "0 9 * * *", "missed_slot_policy": "catch_up"},
            "missed_slot_policy: Input should be 'fire_once' or 'skip'",
        ),
        (TriggerConfig, {"kind": "on_sunday"}, "kind: Input should be"),
        (
            AiAnalysisConfig,
            {"prompt": "p", "output_schema": {"type": "array"}},
            "output_schema must describe an object",
        ),
        (
            AiAnalysisConfig,
            {"prompt": "p", "output_schema": {"type": "object", "properties": {}}},
            "output_schema needs at least one property",
        ),
        (
            AiAnalysisConfig,
            {"prompt": "p", "output_schema": {"type": "object", "properties": {"a": {"type": "text"}}}},
            "output_schema.properties.a.type must be one of",
        ),
        (
            AiAnalysisConfig,
            {"prompt": "p", "output_schema": {"type": "object", "properties": {"a": {}}, "required": ["b"]}},
            "output_schema.required must list names of its properties",
        ),
        (
            AiAnalysisConfig,
            {"prompt": "p", "output_schema": {"type": "object", "properties": {"a": {}}}, "temperature": 2.5},
            "temperature: Input should be less than or equal to 2",
        ),
        (
            AiClassificationConfig,
            {"text": "t", "labels": ["only"]},
            "labels: Tuple should have at least 2 items",
        ),
        (AiClassificationConfig, {"text": "t", "labels": ["Yes", "yes "]}, "labels must be distinct"),
        (AiClassificationConfig, {"text": "t", "labels": ["a", " "]}, "a label cannot be blank"),
        (
            AiClassificationConfig,
            {"text": "t", "labels": [f"l{i}" for i in range(51)]},
            "labels: Tuple should have at most 50 items",
        ),
        (
            RecordFindConfig,
            {"pipeline_id": "leads", "limit": 1001},
            "limit: Input should be less than or equal to 1000",
        ),
        (
            RecordFindConfig,
            {"pipeline_id": "leads", "filters": {"field": "x", "operator": "resembles"}},
            "filters.comparison.operator: Input should be",
        ),
        (
            ConditionConfig,
            {"condition": {"and": [CONDITION, {"nope": 1}]}},
            "condition.and.and.1.comparison.field: Field required",
        ),
        (
            SwitchConfig,
            {"cases": [{"name": "a", "condition": CONDITION}, {"name": "a", "condition": CONDITION}]},
            "case names must be distinct: 'a' repeats",
        ),
        (SwitchConfig, {"cases": []}, "cases: Tuple should have at least 1 item"),
        (ForEachConfig, {"items": "nodes.find.output.records"}, "items: String should match pattern"),
        (
            ForEachConfig,
            {"items": "{{ x }}", "max_concurrency": 101},
            "max_concurrency: Input should be less than or equal to 100",
        ),
        (
            ForEachConfig,
            {"items": "{{ x }}", "failure_policy": "ignore"},
            "failure_policy: Input should be 'fail', 'skip' or 'collect'",
        ),
        (WaitDelayConfig, {}, "a wait_delay has exactly one of duration_seconds and until"),
        (
            WaitDelayConfig,
            {"duration_seconds": 5, "until": "2026-01-01T00:00:00Z"},
            "exactly one of duration_seconds and until",
        ),
        (
            WaitDelayConfig,
            {"duration_seconds": 30 * 24 * 3600 + 1},
            "duration_seconds: Input should be less than or equal to 2592000",
        ),
        (WaitDelayConfig, {"duration_seconds": 0}, "duration_seconds: Input should be greater than 0"),
        (WaitDelayConfig, {"until": "tomorrow"}, "until is a template or an ISO 8601 date-time"),
        (WaitDelayConfig, {"until": "2026-01-31T09:00:00"}, "until needs a UTC offset"),
        (SetVariablesConfig, {"variables": {"1st": 1}}, "variables.1st.[key]: String should match pattern"),
        (SetVariablesConfig, {"variables": {}}, "variables: Dictionary should have at least 1 item"),
        (
            ApprovalConfig,
            {"assignee": {}, "title": "t"},
            'assignee: an assignee is {"user": ...} or {"role": ...}',
        ),
        (ApprovalConfig, {"assignee": {"user": "a", "role": "b"}, "title": "t"}, "an assignee is"),
        (
            ApprovalConfig,
            {"assignee": {"role": "r"}, "title": "t", "deadline_seconds": 60, "on_deadline": "escalate"},
            'escalate_to: on_deadline "escalate" needs escalate_to',
        ),
        (
            ApprovalConfig,
            {
                "assignee": {"role": "r"},
                "title": "t",
                "on_deadline": "escalate",
                "escalate_to": {"role": "boss"},
            },
            'on_deadline "escalate" needs deadline_seconds',
        ),
        (
            ApprovalConfig,
            {"assignee": {"user": "u"}, "title": "t", "quorum": 2},
            "quorum: a quorum above 1 needs a role assignee",
        ),
        (
            ApprovalConfig,
            {"assignee": {"role": "r"}, "title": "t", "quorum": 0},
            "quorum: Input should be greater than or equal to 1",
        ),
    ],
)
def test_invalid_configs_are_refused_with_the_reason(model, data, reason):
    assert reason in refusal(model, data)


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (
            TriggerConfig,
            {
                "kind": "field_changed",
                "pipeline_ids": ["deals"],
                "fields": [{"field": "stage", "from": ["open"], "to": ["won", None]}],
            },
        ),
        (TriggerConfig, {"kind": "webhook", "require_signature": True, "secret_credential": "inbound-hmac"}),
        (
            TriggerConfig,
            {
                "kind": "scheduled",
                "cron": "*/15 8-18 * * MON-FRI",
                "timezone": "America/New_York",
                "missed_slot_policy": "skip",
            },
        ),
        (TriggerConfig, {"kind": "record_deleted", "conditions": {"not": CONDITION}}),
        (WaitDelayConfig, {"until": "{{ trigger.record.data.due_date }}"}),
        (WaitDelayConfig, {"until": "2026-01-31T09:00:00+01:00"}),
        (
            ApprovalConfig,
            {
                "assignee": {"role": "finance"},
                "title": "Pay?",
                "quorum": 2,
                "deadline_seconds": 3600,
                "on_deadline": "escalate",
                "escalate_to": {"user": "cfo"},
            },
        ),
        (
            HttpRequestConfig,
            {"url": "{{ vars.base_url }}/items", "body_type": "form", "body": {"a": "1", "b": 2}},
        ),
        (
            HttpRequestConfig,
            {"url": "https://x.test", "on_error": "fallback", "fallback_output": {"status": 0}},
        ),
        (
            AiClassificationConfig,
            {"text": "t", "labels": ["yes", "no"], "model": "small-model", "max_tokens": 50},
        ),
    ],
)
def test_valid_configs_are_accepted(model, data):
    model.model_validate({"name": "N", **data})


def test_the_shared_execution_policy_has_documented_defaults():
    config = ConditionConfig.model_validate({"name": "C", "condition": CONDITION})

    assert config.timeout_seconds == 30 and config.on_error == "fail_run" and config.fallback_output is None
    assert config.retry is None, "no policy of its own: the workflow's retry_count applies"
    assert RetryPolicy() == RetryPolicy(
        max_attempts=1, backoff_seconds=1, backoff_multiplier=2, max_backoff_seconds=300, retry_on=("*",)
    )


def test_the_trigger_keeps_kind_and_pipeline_ids_and_defaults_its_schedule_options():
    config = TriggerConfig.model_validate({"name": "T", "kind": "record_created", "pipeline_ids": ["leads"]})

    assert (config.kind, config.pipeline_ids) == ("record_created", ("leads",))
    assert (config.timezone, config.missed_slot_policy, config.require_signature) == (
        "UTC",
        "fire_once",
        False,
    )


@pytest.mark.parametrize(
    "expression",
    ["* * * * *", "0 9 * * 1-5", "*/5 0,12 1-15/2 JAN-jun sun", "59 23 31 12 7", "@daily", "@HOURLY"],
)
def test_cron_accepts_five_field_expressions_and_macros(expression):
    check_cron(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "* * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * * 13 *",
        "* * * * 8",
        "5-1 * * * *",
        "*/0 * * * *",
        "@sometimes",
        "a b c d e",
    ],
)
def test_cron_refuses_what_no_schedule_can_mean(expression):
    with pytest.raises(ValueError, match="cron"):
        check_cron(expression)


def test_every_type_has_a_config_model_with_the_shared_policy():
    assert set(CONFIG_MODELS) == set(NODE_MODELS)
    for model in CONFIG_MODELS.values():
        assert {"name", "retry", "timeout_seconds", "on_error", "fallback_output"} <= set(model.model_fields)


def test_a_minimal_definition_is_valid():
    assert WorkflowDefinition.model_validate(minimal()).trigger.data.kind == "manual"
