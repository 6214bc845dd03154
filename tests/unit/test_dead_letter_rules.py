"""The pure rules of dead letters: whose a letter is, how its message is shown, who sees what, what
can be done with it, how a letter written before letters named their cause is classified, and how the
dead-letter topics are made."""

from __future__ import annotations

import base64
import json
import typing
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.messages.envelope import DeadLetter, DeadLetterCause
from millrace_common.contracts.messages.records import RecordCreated
from millrace_common.contracts.topics import ALL_TOPICS, RUNS_COMMANDS, dead_letter_topics, source_of
from millrace_common.platform.topic_layout import DeadLetterTopics, TopicLayout
from millrace_gateway.domain.dead_letters import (
    indexed,
    preview,
    refuse_unless_pending,
    refuse_unless_replayable,
    tenant_of,
    visible_tenant,
)
from millrace_gateway.domain.refusals import AlreadyReplayed, NotReplayable, WrongState
from millrace_gateway.entrypoints.http.dead_letters import SourceTopic

pytestmark = pytest.mark.unit


def letter(raw: bytes, **fields: object) -> DeadLetter:
    return DeadLetter(
        source_topic="ns.records.events",
        partition=2,
        offset=40,
        key="r-1",
        reason="handling failed 3 times: ProgrammingError: permission denied",
        consumer_group="ns.trigger",
        raw_value=raw.decode(errors="replace"),
        raw_value_base64=base64.b64encode(raw).decode(),
        **fields,
    )


def test_a_letter_belongs_to_the_tenant_its_message_names():
    event = RecordCreated(tenant_id="acme", pipeline_id="deals", record_id="r-1", data={})
    assert tenant_of(event.to_bytes()) == "acme"
    assert tenant_of(b'{"tenant_id": "bad tenant!"}') is None
    assert tenant_of(b'{"tenant_id": 7}') is None
    assert tenant_of(b"[1, 2]") is None
    assert tenant_of(b"{not json") is None
    assert tenant_of(b"\xff\xfe") is None


@given(st.binary(max_size=200))
def test_any_bytes_have_a_tenant_or_none_and_a_way_to_be_shown(raw: bytes):
    assert tenant_of(raw) is None or isinstance(tenant_of(raw), str)
    kind, value = preview(raw)
    assert kind in {"json", "text", "binary"}
    if kind == "binary":
        assert value is None


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    )
)
def test_a_json_message_is_shown_parsed(value: object):
    assert preview(json.dumps(value).encode()) == ("json", value)


def test_text_that_is_not_json_is_shown_as_text():
    assert preview(b"{not json") == ("text", "{not json")


def test_a_platform_operator_sees_every_tenant_and_an_admin_only_their_own():
    assert visible_tenant("acme", None) == "acme"
    assert visible_tenant("acme", "ops") == "acme"
    assert visible_tenant("ops", "ops") is None


def test_only_a_pending_letter_is_replayed_or_discarded_and_a_second_replay_names_the_first():
    refuse_unless_pending("pending", replayed_at=None, by=None)
    when = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    for state in ("replaying", "replayed"):
        with pytest.raises(AlreadyReplayed, match="2026-12-02T10:00:00\\+00:00 by user:1@acme"):
            refuse_unless_pending(state, replayed_at=when, by="user:1@acme")
    with pytest.raises(WrongState, match="discarded"):
        refuse_unless_pending("discarded", replayed_at=None, by=None)
    assert AlreadyReplayed.status == 409 and AlreadyReplayed.code == "already_replayed"
    refuse_unless_replayable(False, "records.events")
    with pytest.raises(NotReplayable):
        refuse_unless_replayable(True, "records.events")
    with pytest.raises(NotReplayable, match="the producer sends it again"):
        refuse_unless_replayable(False, "records.ingress")
    with pytest.raises(NotReplayable, match="its producer sends it again"):
        refuse_unless_replayable(False, "kafka.granted")


def test_a_letter_is_indexed_with_its_original_bytes_and_where_both_were():
    event = RecordCreated(tenant_id="acme", pipeline_id="deals", record_id="r-1", data={"n": 1})
    row = indexed(
        "records.events", 1, 9, letter(event.to_bytes(), headers={"h": "v"}, cause=DeadLetterCause.FAILED)
    )
    assert row.value == event.to_bytes() and row.tenant_id == "acme" and row.headers == {"h": "v"}
    assert (row.topic, row.dlq_partition, row.dlq_offset) == ("records.events", 1, 9)
    assert (row.source_partition, row.source_offset, row.cause) == (2, 40, "failed")


def test_a_letter_from_a_tenant_s_own_topic_belongs_to_that_tenant_whatever_it_claims():
    forged = RecordCreated(tenant_id="beta", pipeline_id="deals", record_id="r-1", data={})
    row = indexed("records.ingress", 0, 1, letter(forged.to_bytes()), proven_tenant="acme")
    assert row.tenant_id == "acme"


def test_a_letter_written_before_letters_named_their_cause_is_classified():
    assert indexed("records.events", 0, 0, letter(b"x", error_type="RuntimeError")).cause == "failed"
    assert indexed("records.events", 0, 0, letter(b"x")).cause == "failed"  # its reason says handling failed
    parse = letter(b"x").model_copy(update={"reason": "(message): Invalid JSON"})
    assert indexed("records.events", 0, 0, parse).cause == "undecodable"
    outbox = letter(b"x").model_copy(update={"consumer_group": "outbox:gateway"})
    assert indexed("records.events", 0, 0, outbox).cause == "kafka_refused"


def test_dead_letter_topics_have_their_own_partitions_and_retention():
    layout = TopicLayout(dead_letters=DeadLetterTopics(5, 7_200_000), partitions=12, retention_ms=3_600_000)
    shape = layout.shape_of(RUNS_COMMANDS.dlq)
    assert shape.partitions == 5 and shape.configs["retention.ms"] == "7200000"
    assert "max.message.bytes" in shape.configs
    plain = TopicLayout(dead_letters=DeadLetterTopics(5, 7_200_000)).shape_of(RUNS_COMMANDS)
    assert plain.partitions == RUNS_COMMANDS.partitions and "retention.ms" not in plain.configs


def test_every_dead_letter_topic_names_its_source_and_the_api_lists_each_source():
    sources = [source_of(topic) for topic in dead_letter_topics()]
    assert sources == [topic for topic in ALL_TOPICS if topic.dead_letter]
    assert set(typing.get_args(SourceTopic)) == {topic.name for topic in sources}
    with pytest.raises(LookupError):
        source_of(RUNS_COMMANDS)
