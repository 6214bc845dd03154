"""The trigger service takes an outside event's tenant from its ingress topic, never from the message."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_trigger.domain.provenance import refusal

pytestmark = pytest.mark.unit

tenants = st.text(alphabet="ab.:-_", min_size=1, max_size=8)


@given(tenants, tenants)
def test_an_event_is_matched_only_in_the_tenant_its_topic_proves(proven: str, claimed: str):
    reason = refusal(proven, claimed)
    assert (reason is None) == (proven == claimed)
    if reason is not None:
        assert repr(claimed) in reason and repr(proven) in reason


@given(tenants)
def test_the_platform_s_own_topic_is_trusted(claimed: str):
    assert refusal(None, claimed) is None
