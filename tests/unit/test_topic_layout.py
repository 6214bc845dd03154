"""How the registry's topics are laid out from the settings (partitions by default, by family and by
topic; replicas, min.insync.replicas, retention) and how growing them is planned: never a shrink."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.topics import (
    ALL_TOPICS,
    NODES_READY_AI,
    NODES_READY_HTTP,
    RECORDS_EVENTS,
    RUNS_COMMANDS,
    every_topic,
)
from millrace_common.platform.settings import ServiceSettings
from millrace_common.platform.topic_admin import layout_of
from millrace_common.platform.topic_layout import (
    DeadLetterTopics,
    Growth,
    PartitionOverride,
    TopicLayout,
    parse_partition_overrides,
    plan_growth,
)
from pydantic import ValidationError

pytestmark = [pytest.mark.unit, pytest.mark.usefixtures("no_millrace_environment")]


def test_by_default_each_topic_has_its_registry_count_and_one_in_sync_replica():
    layout = layout_of(ServiceSettings())
    for topic in ALL_TOPICS:
        shape = layout.shape_of(topic)
        assert shape.partitions == topic.partitions
        assert shape.configs["min.insync.replicas"] == "1" and "retention.ms" not in shape.configs
    assert layout.replication_factor == 1


def test_a_family_override_lifts_the_runner_topics_past_three_consumers_per_class():
    layout = layout_of(
        ServiceSettings(
            kafka_partitions=12,
            kafka_topic_partitions="nodes.ready.*=24, runs.commands=6, nodes.ready.ai=8",
            kafka_replication_factor=3,
            kafka_min_insync_replicas=2,
            kafka_retention_ms=14 * 24 * 3600 * 1000,
        )
    )
    assert layout.partitions_of(NODES_READY_HTTP) == 24
    assert layout.partitions_of(NODES_READY_AI) == 8, "the last entry that matches wins"
    assert layout.partitions_of(RUNS_COMMANDS) == 6
    assert layout.partitions_of(RECORDS_EVENTS) == 12
    shape = layout.shape_of(RECORDS_EVENTS)
    assert shape.configs["min.insync.replicas"] == "2"
    assert shape.configs["retention.ms"] == str(14 * 24 * 3600 * 1000)
    assert layout.replication_factor == 3


def test_dead_letter_topics_keep_their_own_partitions_and_retention_whatever_the_topics_get():
    layout = TopicLayout(partitions=12, overrides=(PartitionOverride("*", 30),), retention_ms=3_600_000)
    for topic in every_topic():
        if topic.holds_dead_letters:
            shape = layout.shape_of(topic)
            assert shape.partitions == DeadLetterTopics().partitions
            assert shape.configs["retention.ms"] == str(DeadLetterTopics().retention_ms)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("nodes.ready.*", "'nodes.ready.*' is not topic=partitions"),
        ("nodes.ready.*=0", "is not topic=partitions"),
        ("nodes.ready.*=many", "is not topic=partitions"),
        ("node.ready.*=12", "'node.ready.*' matches no topic; the topics are records.events"),
        ("records.events.dlq=6", "matches no topic"),
    ],
)
def test_an_override_that_names_no_topic_or_no_count_is_refused_naming_the_variable(value, named):
    with pytest.raises(ValueError, match="MILLRACE_KAFKA_TOPIC_PARTITIONS") as refused:
        parse_partition_overrides(value)
    assert named in str(refused.value)
    with pytest.raises(ValidationError, match="MILLRACE_KAFKA_TOPIC_PARTITIONS"):
        ServiceSettings(kafka_topic_partitions=value)


def test_an_empty_override_list_is_no_override():
    assert parse_partition_overrides("") == () and parse_partition_overrides(" , ") == ()


def test_growing_to_the_settings_grows_what_is_behind_and_leaves_what_was_grown_further():
    plan = plan_growth({"a": 3, "b": 12, "c": 6}, {"a": 12, "b": 6, "c": 6}, explicit=False)
    assert plan.grow == (Growth("a", 3, 12),) and plan.refused == ()


def test_asking_for_fewer_partitions_than_a_topic_has_is_refused():
    plan = plan_growth({"nodes.ready.http": 12}, {"nodes.ready.http": 6}, explicit=True)
    assert plan.grow == ()
    [refusal] = plan.refused
    assert refusal.startswith("nodes.ready.http has 12 partitions: Kafka cannot shrink a topic to 6")


def test_a_topic_that_does_not_exist_is_not_grown():
    assert plan_growth({}, {"x": 6}, explicit=False).refused == (
        "x does not exist (millrace-topics creates it)",
    )


counts = st.dictionaries(st.sampled_from("abcdef"), st.integers(1, 50), max_size=6)


@given(current=counts, wanted=counts, explicit=st.booleans())
def test_a_growth_plan_never_shrinks_nor_touches_a_topic_already_big_enough(current, wanted, explicit):
    plan = plan_growth(current, wanted, explicit=explicit)
    assert all(g.to > g.partitions == current[g.topic] and g.to == wanted[g.topic] for g in plan.grow)
    grown = {g.topic for g in plan.grow}
    assert grown == {t for t, n in wanted.items() if t in current and n > current[t]}
    shrinks = [t for t, n in wanted.items() if t in current and n < current[t]]
    missing = [t for t in wanted if t not in current]
    assert len(plan.refused) == len(missing) + (len(shrinks) if explicit else 0)
