"""Kafka triggers and publish nodes, the pure parts: reading a message's value, the runs a message asks
for (once per workflow and offset), the topics a workflow may name, and the ACLs grants mean."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.topics import (
    KAFKA_GRANTED,
    RECORDS_INGRESS,
    RUNS_COMMANDS,
    Namespace,
    every_topic,
)
from millrace_common.language.workflow import TriggerConfig, WorkflowDefinition
from millrace_gateway.domain.grants import Acl, plan
from millrace_gateway.domain.topic_grants import (
    PlatformTopic,
    TopicAccess,
    TopicGrant,
    managed_by_topic_grants,
    refuse_platform_topic,
    services_principal,
    topic_acls,
    ungranted_topics,
)
from millrace_trigger.domain.firings import Candidate, Outcome
from millrace_trigger.domain.kafka_messages import (
    KafkaCandidate,
    Unreadable,
    consumed,
    match_message,
    read_value,
)
from pydantic import ValidationError

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ACTIVATED = NOW - timedelta(hours=1)


def kafka_candidate(topic: str = "orders", **config: object) -> KafkaCandidate:
    parsed = TriggerConfig.model_validate({"name": "On order", "kind": "kafka", "topic": topic, **config})
    return KafkaCandidate(Candidate(uuid.uuid4(), 2, "acme", parsed), ACTIVATED)


def message(value: object = None, *, topic: str = "orders", offset: int = 7, at: datetime = NOW):
    return consumed(
        topic,
        1,
        offset,
        b"order-9",
        [("source", b"shop"), ("trace", b"\xff\xfe")],
        int(at.timestamp() * 1000),
        value if value is not None else {"total": 120},
    )


def test_a_value_that_is_not_json_is_refused_with_the_reason():
    refused = read_value(b"{not json", max_bytes=100)
    assert isinstance(refused, Unreadable) and "not JSON" in refused.reason


def test_a_value_over_the_limit_a_tombstone_and_bytes_that_are_not_text_are_refused_each_saying_why():
    too_big = read_value(b'"' + b"x" * 200 + b'"', max_bytes=100)
    assert (
        isinstance(too_big, Unreadable) and "202 bytes" in too_big.reason and "at most 100" in too_big.reason
    )
    tombstone = read_value(None, max_bytes=100)
    assert isinstance(tombstone, Unreadable) and "no value" in tombstone.reason
    binary = read_value(b"\xff\xfe\x00", max_bytes=100)
    assert isinstance(binary, Unreadable)


def test_a_value_nested_too_deep_or_with_a_number_json_does_not_have_is_refused():
    deep = read_value(b"[" * 65 + b"]" * 65, max_bytes=1000)
    assert isinstance(deep, Unreadable) and "deeper than 64" in deep.reason
    for constant in (b"NaN", b'{"x": Infinity}'):
        refused = read_value(constant, max_bytes=1000)
        assert isinstance(refused, Unreadable) and "not JSON" in refused.reason


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )
)
def test_any_json_value_within_the_limit_is_read_as_it_was_written(value):
    assert read_value(json.dumps(value).encode(), max_bytes=1_000_000) == value


def test_a_message_starts_a_run_whose_trigger_has_its_value_key_headers_and_place():
    found = kafka_candidate()
    [firing] = match_message(message(), [found], now=NOW)
    assert firing.outcome is Outcome.STARTED
    assert firing.idempotency_key == f"kafka:orders:1:7:{found.candidate.workflow_id}"
    kafka = firing.data["kafka"]
    assert kafka["value"] == {"total": 120}
    assert (kafka["topic"], kafka["partition"], kafka["offset"], kafka["key"]) == ("orders", 1, 7, "order-9")
    assert kafka["headers"] == {"source": "shop", "trace": "\ufffd\ufffd"}
    assert kafka["timestamp"] == NOW.isoformat()
    assert firing.start_run().trigger.kind == "kafka"


def test_the_same_message_asks_for_the_same_run_and_the_next_offset_for_another():
    found = kafka_candidate()
    [first] = match_message(message(), [found], now=NOW)
    [again] = match_message(message(), [found], now=NOW)
    [next_one] = match_message(message(offset=8), [found], now=NOW)
    assert first.run_id == again.run_id != next_one.run_id


def test_each_workflow_on_the_topic_fires_once_and_one_on_another_topic_does_not():
    mine, also, elsewhere = kafka_candidate(), kafka_candidate(), kafka_candidate("payments")
    firings = match_message(message(), [mine, also, elsewhere], now=NOW)
    assert {f.workflow_id for f in firings} == {mine.candidate.workflow_id, also.candidate.workflow_id}


def test_latest_skips_messages_written_before_the_activation_and_earliest_takes_them():
    old = message(at=ACTIVATED - timedelta(seconds=1))
    assert match_message(old, [kafka_candidate()], now=NOW) == []
    assert len(match_message(old, [kafka_candidate(start_from="earliest")], now=NOW)) == 1


def test_the_condition_reads_the_message_and_filters():
    big = {"field": "trigger.kafka.value.total", "operator": "greater_than", "value": 100}
    found = kafka_candidate(conditions=big)
    assert len(match_message(message({"total": 120}), [found], now=NOW)) == 1
    assert match_message(message({"total": 80}), [found], now=NOW) == []
    [broken] = match_message(message({"total": "lots"}), [found], now=NOW)
    assert broken.outcome is Outcome.CONDITION_ERROR


def test_a_kafka_trigger_names_its_topic_and_only_a_kafka_trigger_has_one():
    with pytest.raises(ValidationError, match="names the topic"):
        TriggerConfig.model_validate({"name": "t", "kind": "kafka"})
    with pytest.raises(ValidationError, match="only applies"):
        TriggerConfig.model_validate({"name": "t", "kind": "webhook", "topic": "orders"})
    with pytest.raises(ValidationError):
        TriggerConfig.model_validate({"name": "t", "kind": "kafka", "topic": "no spaces"})


def definition(trigger_topic: str, publish_topic: str) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "nodes": [
                {
                    "id": "when",
                    "type": "trigger",
                    "position": {"x": 0, "y": 0},
                    "data": {"name": "When", "kind": "kafka", "topic": trigger_topic},
                },
                {
                    "id": "emit",
                    "type": "kafka_publish",
                    "position": {"x": 0, "y": 100},
                    "data": {"name": "Emit", "topic": publish_topic, "key": "{{ trigger.kafka.key }}"},
                },
            ],
            "edges": [{"id": "e", "source": "when", "target": "emit"}],
        }
    )


def test_a_topic_not_granted_for_its_use_is_pointed_at():
    granted = {TopicAccess.CONSUME: frozenset({"orders"}), TopicAccess.PRODUCE: frozenset({"orders"})}
    assert ungranted_topics(definition("orders", "orders"), granted) == []
    problems = ungranted_topics(definition("payments", "audit"), granted)
    assert [p.pointer for p in problems] == [
        "/definition/nodes/0/data/topic",
        "/definition/nodes/1/data/topic",
    ]
    assert "'payments' to consume" in problems[0].detail and "'audit' to produce" in problems[1].detail
    # Granted to consume is not granted to produce.
    consume_only = {TopicAccess.CONSUME: frozenset({"orders"}), TopicAccess.PRODUCE: frozenset()}
    [problem] = ungranted_topics(definition("orders", "orders"), consume_only)
    assert problem.pointer == "/definition/nodes/1/data/topic"


def test_the_installation_s_own_topics_cannot_be_granted():
    namespace = Namespace("t1")
    for name in (
        namespace.topic(RUNS_COMMANDS),
        namespace.topic(KAFKA_GRANTED.dlq),
        namespace.tenant_topic(RECORDS_INGRESS, "acme"),
    ):
        with pytest.raises(PlatformTopic):
            refuse_platform_topic(name, namespace, pointer="/body/topic")
    refuse_platform_topic("orders", namespace, pointer="/body/topic")
    assert KAFKA_GRANTED not in every_topic() and KAFKA_GRANTED.dlq in every_topic()


def test_grants_mean_the_services_acls_and_sync_removes_only_those_no_grant_means():
    namespace = Namespace("t1")
    principal = services_principal("millrace")
    grants = [
        TopicGrant("acme", "orders", TopicAccess.CONSUME),
        TopicGrant("acme", "audit", TopicAccess.PRODUCE),
    ]
    meant = topic_acls(grants, principal, namespace)
    assert Acl(principal, "TOPIC", "LITERAL", "orders", "READ") in meant
    assert Acl(principal, "GROUP", "LITERAL", "t1.trigger-kafka", "READ") in meant
    assert Acl(principal, "TOPIC", "LITERAL", "audit", "WRITE") in meant
    assert Acl(principal, "TOPIC", "LITERAL", "audit", "READ") not in meant
    stale = Acl(principal, "TOPIC", "LITERAL", "old-topic", "READ")
    own = Acl(principal, "TOPIC", "LITERAL", namespace.topic(RUNS_COMMANDS), "WRITE")
    someone_else = Acl("User:crm", "TOPIC", "LITERAL", "old-topic", "READ")
    steps = plan(
        meant,
        {stale, own, someone_else},
        namespace,
        also_managed=lambda acl: managed_by_topic_grants(acl, principal, namespace),
    )
    assert steps.remove == (stale,)
    assert set(steps.add) == meant
    assert services_principal(None) == "User:ANONYMOUS"
