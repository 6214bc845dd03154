"""A tenant's ingress topic names exactly one tenant: the tenant id as a topic-name segment and back
(``contracts.tenant_topics``), and the namespace's per-tenant names and pattern (``contracts.topics``)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.tenant_topics import tenant_from_segment, tenant_segment
from millrace_common.contracts.topics import (
    RECORDS_EVENTS,
    RECORDS_INGRESS,
    Namespace,
    dead_letter_topics,
    every_topic,
)
from millrace_common.platform.consuming import Decoder
from pydantic import TypeAdapter

pytestmark = pytest.mark.unit

tenant_ids = st.text(alphabet="abcXYZ019_.:-", min_size=1, max_size=64)
namespaces = st.sampled_from(["", "t0a1b2c3d4e5", "prod"])
KAFKA_TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")


@given(tenant_ids)
def test_a_tenant_id_survives_the_segment_and_the_segment_has_no_dot(tenant_id: str):
    segment = tenant_segment(tenant_id)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", segment)
    assert tenant_from_segment(segment) == tenant_id


@given(tenant_ids, tenant_ids)
def test_two_tenants_never_share_a_segment_nor_does_one_begin_the_other_s_prefix(a: str, b: str):
    if a != b:
        assert tenant_segment(a) != tenant_segment(b)
        namespace = Namespace("")
        assert not namespace.tenant_topic(RECORDS_INGRESS, b).startswith(f"tenant.{tenant_segment(a)}.")


def test_segments_read_as_documented():
    assert [tenant_segment(t) for t in ("acme", "acme.eu", "my_co", "org:7")] == [
        "acme",
        "acme_deu",
        "my__co",
        "org_c7",
    ]
    for stray in ("a_", "a_x", "a.b", "", "a b"):
        assert tenant_from_segment(stray) is None


@given(namespaces, tenant_ids)
def test_a_tenant_topic_is_a_legal_kafka_name_and_names_its_tenant_back(prefix: str, tenant_id: str):
    namespace = Namespace(prefix)
    name = namespace.tenant_topic(RECORDS_INGRESS, tenant_id)
    assert KAFKA_TOPIC.fullmatch(name)
    assert namespace.tenant_of(RECORDS_INGRESS, name) == tenant_id
    assert Namespace("other").tenant_of(RECORDS_INGRESS, name) is None


@given(namespaces)
def test_no_other_topic_of_the_namespace_passes_for_a_tenant_topic(prefix: str):
    namespace = Namespace(prefix)
    for topic in every_topic():
        assert namespace.tenant_of(RECORDS_INGRESS, namespace.topic(topic)) is None
    assert namespace.tenant_of(RECORDS_INGRESS, f"{namespace.tenant_topic(RECORDS_INGRESS, 'a')}.dlq") is None


def test_a_family_has_one_shared_dead_letter_topic_and_no_topic_of_its_own():
    names = {topic.name for topic in every_topic()}
    assert "records.ingress" not in names
    assert "records.ingress.dlq" in names
    assert RECORDS_INGRESS.dlq in dead_letter_topics()
    with pytest.raises(AssertionError):
        Namespace("").tenant_topic(RECORDS_EVENTS, "acme")


def test_a_decoder_with_a_family_subscribes_by_a_pattern_that_reads_each_tenant_s_topic():
    namespace = Namespace("ns1")
    adapter = TypeAdapter(dict)
    decoder = Decoder(namespace, {RECORDS_EVENTS: adapter, RECORDS_INGRESS: adapter})
    assert decoder.topics == ["ns1.records.events"]
    pattern = re.compile(decoder.pattern or "")
    for tenant_id in ("acme", "acme.eu", "x_y:z"):
        assert pattern.match(namespace.tenant_topic(RECORDS_INGRESS, tenant_id))
    assert pattern.match("ns1.records.events")
    for other in ("ns1.records.events.dlq", "ns1.records.ingress.dlq", "ns2.tenant.a.records.ingress", "x"):
        assert not pattern.match(other)
    assert Decoder(namespace, {RECORDS_EVENTS: adapter}).pattern is None
