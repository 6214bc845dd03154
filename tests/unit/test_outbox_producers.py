"""Which producer name an outbox row is stored under: a record's events share one name whichever
service writes them, so one relay pass at a time publishes them in commit order."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.messages.records import RecordUpdated
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RECORDS_EVENTS, every_topic
from millrace_common.platform.outbox import RECORDS_PRODUCER, producer_for

pytestmark = pytest.mark.unit


def _record_event() -> Outgoing:
    event = RecordUpdated(
        tenant_id="acme", pipeline_id="tickets", record_id="r1", old_data={"n": 1}, data={"n": 2}
    )
    return Outgoing(RECORDS_EVENTS, event.record_id, event)


@pytest.mark.parametrize("service", ["gateway", "node-runner", "approval"])
def test_every_service_stores_record_events_under_the_shared_name(service: str) -> None:
    assert producer_for(service, _record_event()) == RECORDS_PRODUCER


@given(st.sampled_from([t for t in every_topic() if t != RECORDS_EVENTS]), st.sampled_from(["gateway", "x"]))
def test_other_topics_keep_the_writing_service_s_name(topic, service: str) -> None:
    message = Outgoing(topic, "k", _record_event().message)
    assert producer_for(service, message) == service


def test_the_shared_name_is_no_service_s_own() -> None:
    from millrace_approval.settings import PRODUCER as APPROVAL
    from millrace_gateway.settings import PRODUCER as GATEWAY
    from millrace_gateway.settings import WEBHOOK_PRODUCER
    from millrace_node_runner.settings import PRODUCER as NODE_RUNNER

    assert RECORDS_PRODUCER not in {
        GATEWAY,
        WEBHOOK_PRODUCER,
        NODE_RUNNER,
        APPROVAL,
        "orchestrator",
        "trigger",
    }
