"""The orchestrator's run metrics: what committed run events count, and the labels they count under."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from millrace_common.contracts.messages.node_commands import NodeError
from millrace_common.contracts.messages.run_commands import TriggerData
from millrace_common.contracts.messages.run_events import (
    ApprovalRequested,
    NodeFailed,
    NodeRetryScheduled,
    NodeSkipped,
    NodeSucceeded,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunRetried,
    RunStarted,
    RunThrottled,
    RunTimedOut,
    TimerScheduled,
)
from millrace_common.platform.metrics import BoundedLabel
from millrace_orchestrator.metrics import RunMetrics
from prometheus_client import CollectorRegistry

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WORKFLOW = UUID(int=7)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def started(
    run_id: UUID, tenant: str = "acme", kind: str = "record_created", at: datetime = T0
) -> RunStarted:
    return RunStarted(
        tenant_id=tenant,
        correlation_id=run_id,
        run_id=run_id,
        workflow_id=WORKFLOW,
        workflow_version=1,
        trigger=TriggerData(kind=kind),
        occurred_at=at,
    )


def envelope(run_id: UUID, tenant: str = "acme", at: datetime = T0) -> dict:
    return {"tenant_id": tenant, "correlation_id": run_id, "run_id": run_id, "occurred_at": at}


def test_a_run_counts_as_started_and_then_finished_with_its_trigger_kind_and_duration():
    registry = CollectorRegistry()
    metrics = RunMetrics(registry)
    run_id = uuid4()

    metrics.observe([started(run_id, kind="webhook")])
    metrics.observe([RunCompleted(**envelope(run_id, at=T0 + timedelta(seconds=3)))])

    assert value(registry, "millrace_runs_started_total", tenant="acme", trigger="webhook") == 1
    assert (
        value(registry, "millrace_runs_finished_total", tenant="acme", trigger="webhook", outcome="completed")
        == 1
    )
    assert value(registry, "millrace_run_duration_seconds_count", outcome="completed") == 1
    assert value(registry, "millrace_run_duration_seconds_sum", outcome="completed") == 3
    assert value(registry, "millrace_run_duration_seconds_bucket", outcome="completed", le="2.5") == 0
    assert value(registry, "millrace_run_duration_seconds_bucket", outcome="completed", le="5.0") == 1


@pytest.mark.parametrize(
    ("event", "outcome"),
    [
        (lambda r: RunFailed(**envelope(r), reason="node 'x' failed"), "failed"),
        (lambda r: RunCancelled(**envelope(r), reason="asked"), "cancelled"),
        (lambda r: RunTimedOut(**envelope(r), reason="60 minutes"), "timed_out"),
    ],
)
def test_each_way_of_ending_is_its_own_outcome(event, outcome):
    registry = CollectorRegistry()
    metrics = RunMetrics(registry)
    run_id = uuid4()

    metrics.observe([started(run_id), event(run_id)])

    labels = {"tenant": "acme", "trigger": "record_created", "outcome": outcome}
    assert value(registry, "millrace_runs_finished_total", **labels) == 1
    assert value(registry, "millrace_run_duration_seconds_count", outcome=outcome) == 1


def test_a_run_this_process_did_not_see_start_finishes_as_unknown_without_a_duration():
    registry = CollectorRegistry()
    metrics = RunMetrics(registry)

    metrics.observe([RunCompleted(**envelope(uuid4()))])

    assert (
        value(registry, "millrace_runs_finished_total", tenant="acme", trigger="unknown", outcome="completed")
        == 1
    )
    assert value(registry, "millrace_run_duration_seconds_count", outcome="completed") == 0


def test_a_throttled_run_is_counted_as_throttled_and_never_as_started():
    registry = CollectorRegistry()
    metrics = RunMetrics(registry)
    run_id = uuid4()

    metrics.observe(
        [
            RunThrottled(
                **envelope(run_id),
                workflow_id=WORKFLOW,
                workflow_version=1,
                trigger=TriggerData(kind="manual"),
                reason="max_executions_per_hour",
            )
        ]
    )

    assert value(registry, "millrace_runs_throttled_total", tenant="acme", trigger="manual") == 1
    assert value(registry, "millrace_runs_started_total", tenant="acme", trigger="manual") == 0


def test_nodes_count_by_type_and_outcome_and_retries_by_type():
    registry = CollectorRegistry()
    metrics = RunMetrics(registry)
    run_id = uuid4()
    error = NodeError(type="http_status", message="the server answered 503", retryable=True)

    metrics.observe(
        [
            started(run_id),
            NodeRetryScheduled(
                **envelope(run_id),
                node_id="call",
                node_type="http_request",
                attempt=1,
                error=error,
                retry_at=T0,
            ),
            NodeSucceeded(
                **envelope(run_id),
                node_id="call",
                node_type="http_request",
                attempt=2,
                output={},
                duration_ms=5,
            ),
            NodeFailed(
                **envelope(run_id), node_id="ai", node_type="ai_prompt", attempt=1, error=error, duration_ms=9
            ),
            NodeSkipped(**envelope(run_id), node_id="other", node_type="end"),
            TimerScheduled(**envelope(run_id), timer_id=uuid4(), fire_at=T0, purpose="retry", node_id="call"),
            RunRetried(**envelope(run_id), node_ids=("ai",)),
            ApprovalRequested(
                **envelope(run_id), node_id="ask", workflow_id=WORKFLOW, assignee={"role": "x"}, title="?"
            ),
        ]
    )

    assert value(registry, "millrace_node_retries_total", node_type="http_request") == 1
    assert (
        value(registry, "millrace_node_executions_total", node_type="http_request", outcome="succeeded") == 1
    )
    assert value(registry, "millrace_node_executions_total", node_type="ai_prompt", outcome="failed") == 1
    assert value(registry, "millrace_node_executions_total", node_type="end", outcome="skipped") == 1
    assert value(registry, "millrace_timers_scheduled_total", purpose="retry") == 1
    assert value(registry, "millrace_runs_retried_total", tenant="acme") == 1
    assert value(registry, "millrace_approvals_requested_total", tenant="acme") == 1


def test_per_workflow_counts_exist_only_when_asked_for():
    run_id = uuid4()
    plain, detailed = CollectorRegistry(), CollectorRegistry()
    RunMetrics(plain).observe([started(run_id)])
    RunMetrics(detailed, per_workflow=True).observe([started(run_id), RunCompleted(**envelope(run_id))])

    assert all(m.name != "millrace_workflow_runs" for m in plain.collect())
    labels = {"tenant": "acme", "workflow_id": str(WORKFLOW)}
    assert value(detailed, "millrace_workflow_runs_total", **labels, outcome="started") == 1
    assert value(detailed, "millrace_workflow_runs_total", **labels, outcome="completed") == 1


def test_labels_stay_bounded_however_many_tenants_there_are():
    registry = CollectorRegistry()
    metrics = RunMetrics(registry, tenant_limit=3)

    metrics.observe([started(uuid4(), tenant=f"tenant-{i}") for i in range(10)])

    tenants = {
        s.labels["tenant"] for m in registry.collect() if m.name == "millrace_runs_started" for s in m.samples
    }
    assert tenants == {"tenant-0", "tenant-1", "tenant-2", "other"}
    assert value(registry, "millrace_runs_started_total", tenant="other", trigger="record_created") == 7


def test_remembered_runs_are_bounded_and_forgotten_when_they_finish():
    registry = CollectorRegistry()
    metrics = RunMetrics(registry, remembered_runs=2)
    first, second, third = uuid4(), uuid4(), uuid4()

    metrics.observe([started(first), started(second), started(third)])
    metrics.observe([RunCompleted(**envelope(run)) for run in (first, second, third)])

    assert (
        value(registry, "millrace_runs_finished_total", tenant="acme", trigger="unknown", outcome="completed")
        == 1
    )
    assert value(registry, "millrace_run_duration_seconds_count", outcome="completed") == 2


def test_a_bounded_label_cuts_long_values_and_replaces_unsafe_characters():
    label = BoundedLabel(5, max_length=10)

    assert label("gpt-4o-mini-2024-07-18") == "gpt-4o-min"
    assert label('a"b\nc{d}') == "a_b_c_d_"
    assert label("") == "none"
