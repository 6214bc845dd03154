"""Which finished runs the orchestrator's retention may prune (``domain.retention``): plain cases and
properties over random runs and settings. A run still running is never selected, whatever its age."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.messages.run_events import RUN_ENDED_STATUSES, RunStatus
from millrace_orchestrator.domain.retention import (
    RetentionRules,
    RunCandidate,
    TenantRetention,
    prunable,
    select_prunable,
)

pytestmark = pytest.mark.unit

NOW = datetime(2027, 3, 1, 12, tzinfo=UTC)
DAY = timedelta(days=1)
RULES = RetentionRules(default_keep=30 * DAY, shortest_keep=8 * DAY)


def run(tenant: str = "a", status: str = "completed", ended_days_ago: float | None = 31) -> RunCandidate:
    finished = None if ended_days_ago is None else NOW - timedelta(days=ended_days_ago)
    return RunCandidate(uuid.uuid4(), tenant, status, finished, 7)


def test_a_run_finished_longer_ago_than_the_default_is_pruned_and_a_newer_one_is_kept():
    assert prunable(run(ended_days_ago=31), RULES, NOW)
    assert not prunable(run(ended_days_ago=29), RULES, NOW)


def test_a_running_run_is_kept_however_old_it_is():
    assert not prunable(run(status="running", ended_days_ago=None), RULES, NOW)
    assert not prunable(run(status="running", ended_days_ago=400), RULES, NOW), "retried after it ended"
    assert not prunable(run(status="new", ended_days_ago=400), RULES, NOW)


def test_every_way_a_run_ends_lets_it_be_pruned():
    assert {s for s in RunStatus if prunable(run(status=s.value), RULES, NOW)} == set(RUN_ENDED_STATUSES)


def test_a_tenants_own_retention_replaces_the_default_but_never_goes_below_the_redelivery_horizon():
    rules = RetentionRules(
        30 * DAY, 8 * DAY, {"long": TenantRetention(keep=90 * DAY), "short": TenantRetention(keep=DAY)}
    )
    assert not prunable(run("long", ended_days_ago=60), rules, NOW)
    assert prunable(run("long", ended_days_ago=91), rules, NOW)
    assert not prunable(run("short", ended_days_ago=5), rules, NOW), "messages about it may still come"
    assert prunable(run("short", ended_days_ago=9), rules, NOW)
    assert prunable(run("other", ended_days_ago=31), rules, NOW)


def test_sweeps_are_one_per_tenant_with_a_setting_then_one_for_everyone_else():
    rules = RetentionRules(
        30 * DAY,
        8 * DAY,
        {"b": TenantRetention(keep=60 * DAY, export_first=True), "a": TenantRetention(keep=None)},
    )
    sweeps = rules.sweeps(NOW)
    assert [(s.tenant_id, s.before, s.export_first) for s in sweeps[:2]] == [
        ("a", NOW - 30 * DAY, False),
        ("b", NOW - 60 * DAY, True),
    ]
    assert sweeps[2].tenant_id is None and sweeps[2].excluded == {"a", "b"}
    assert sweeps[2].before == NOW - 30 * DAY and not sweeps[2].export_first


statuses = st.sampled_from([s.value for s in RunStatus])
tenants = st.sampled_from(["a", "b", "c"])
candidates = st.builds(
    RunCandidate,
    st.uuids(),
    tenants,
    statuses,
    st.one_of(st.none(), st.floats(0, 400).map(lambda days: NOW - timedelta(days=days))),
    st.integers(1, 100),
)
keeps = st.one_of(st.none(), st.integers(1, 400).map(lambda days: timedelta(days=days)))
rules = st.builds(
    RetentionRules,
    st.integers(1, 400).map(lambda days: timedelta(days=days)),
    st.integers(1, 30).map(lambda days: timedelta(days=days)),
    st.dictionaries(tenants, st.builds(TenantRetention, keeps, st.booleans())),
)


@given(st.lists(candidates, max_size=30), rules)
def test_what_is_selected_has_ended_longer_ago_than_its_tenant_keeps_runs_and_nothing_else(
    found, chosen_rules
):
    selected = select_prunable(found, chosen_rules, NOW)
    assert all(r.status in RUN_ENDED_STATUSES and r.finished_at is not None for r in selected)
    assert all(NOW - r.finished_at > chosen_rules.keep(r.tenant_id) for r in selected)
    assert all(NOW - r.finished_at >= chosen_rules.shortest_keep for r in selected)
    left = [r for r in found if r not in selected]
    assert not any(prunable(r, chosen_rules, NOW) for r in left)


@given(st.lists(candidates, max_size=30), rules)
def test_a_run_is_selected_only_by_the_sweep_of_its_tenant(found, chosen_rules):
    """Every prunable run ended before its own sweep's cutoff, and lies in that sweep only."""
    sweeps = chosen_rules.sweeps(NOW)
    for candidate in select_prunable(found, chosen_rules, NOW):
        owning = [
            s
            for s in sweeps
            if (s.tenant_id == candidate.tenant_id)
            or (s.tenant_id is None and candidate.tenant_id not in s.excluded)
        ]
        assert len(owning) == 1
        assert candidate.finished_at < owning[0].before
