"""The orchestrator's run and node metrics.

:class:`RunMetrics` counts from the run events the orchestrator committed: the shell calls
:meth:`RunMetrics.observe` with them after the commit, so a rolled-back decision counts nothing. It
also writes a log line when a run is throttled or ends (with its workflow, trigger kind and duration)
and, at DEBUG, when it starts, with the run's ids, so a run can be followed across services' logs.
:class:`RunGauges` reads what is a state rather than an event (runs running, waiting for approval,
not progressing; timers due and overdue) from the database on a timer.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.run_events import (
    ApprovalRequested,
    NodeFailed,
    NodeRetryScheduled,
    NodeSkipped,
    NodeSucceeded,
    RunCancelled,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunRetried,
    RunStarted,
    RunThrottled,
    RunTimedOut,
    TimerScheduled,
)
from millrace_common.platform.metrics import BoundedLabel
from millrace_common.platform.tables import node_executions, run_events, runs, timers
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)
UNKNOWN = "unknown"
RUN_SECONDS_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
    900,
    3600,
    4 * 3600,
    24 * 3600,
    7 * 24 * 3600,
)
TIMER_OVERDUE_AFTER = timedelta(seconds=10)
"""The timer loop looks every 0.2 s; a timer still there this long after its time is late, not queued."""

_NODE_OUTCOMES: dict[type[RunEvent], str] = {
    NodeSucceeded: "succeeded",
    NodeFailed: "failed",
    NodeSkipped: "skipped",
}
_FINISHED: dict[type[RunEvent], str] = {
    RunCompleted: "completed",
    RunFailed: "failed",
    RunCancelled: "cancelled",
    RunTimedOut: "timed_out",
}


@dataclass(frozen=True)
class _RunFacts:
    tenant: str
    trigger: str
    workflow_id: str
    started_at: datetime


class RunMetrics:
    """Counters and histograms of runs and nodes, by tenant and trigger kind (never by run).

    A run's trigger kind, workflow and start time are remembered from its ``run.started`` until it
    finishes (at most ``remembered_runs`` runs, least recently started forgotten first). A run that
    started before this process did, or on another instance, finishes with trigger ``unknown`` and
    adds no duration sample.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        per_workflow: bool = False,
        remembered_runs: int = 100_000,
        tenant_limit: int = 1000,
    ) -> None:
        self._tenant = BoundedLabel(tenant_limit)
        self._trigger = BoundedLabel(50)
        self._node_type = BoundedLabel(100)
        self._runs: OrderedDict[UUID, _RunFacts] = OrderedDict()
        self._remembered_runs = remembered_runs
        self.started = Counter(
            "millrace_runs_started_total",
            "Runs started, by tenant and trigger kind",
            ["tenant", "trigger"],
            registry=registry,
        )
        self.finished = Counter(
            "millrace_runs_finished_total",
            "Runs finished, by tenant, trigger kind and outcome (completed, failed, cancelled, timed_out)",
            ["tenant", "trigger", "outcome"],
            registry=registry,
        )
        self.throttled = Counter(
            "millrace_runs_throttled_total",
            "Runs asked for but not started because their workflow was at a limit, "
            "by tenant and trigger kind",
            ["tenant", "trigger"],
            registry=registry,
        )
        self.retried = Counter(
            "millrace_runs_retried_total",
            "Failed runs retried on request, by tenant",
            ["tenant"],
            registry=registry,
        )
        self.duration = Histogram(
            "millrace_run_duration_seconds",
            "From run.started to the run's end, by outcome",
            ["outcome"],
            buckets=RUN_SECONDS_BUCKETS,
            registry=registry,
        )
        self.nodes = Counter(
            "millrace_node_executions_total",
            "Node attempts ended in the run log, by node type and outcome (succeeded, failed, skipped)",
            ["node_type", "outcome"],
            registry=registry,
        )
        self.node_retries = Counter(
            "millrace_node_retries_total",
            "Node attempts that failed with a retryable error and were scheduled again, by node type",
            ["node_type"],
            registry=registry,
        )
        self.approvals_requested = Counter(
            "millrace_approvals_requested_total",
            "Runs that paused for an approval, by tenant",
            ["tenant"],
            registry=registry,
        )
        self.timers_scheduled = Counter(
            "millrace_timers_scheduled_total",
            "Durable timers set, by purpose",
            ["purpose"],
            registry=registry,
        )
        self.batches = Counter(
            "millrace_orchestrator_batches_total",
            "Polled batches written, by path: cached (decided on cached run states, checked by the write), "
            "read (read first), cached_refused (the check failed and nothing was written; "
            "the batch took the read path)",
            ["path"],
            registry=registry,
        )
        self.per_workflow = (
            Counter(
                "millrace_workflow_runs_total",
                "Runs by tenant, workflow and outcome (started, completed, failed, cancelled, timed_out, "
                "throttled); only with MILLRACE_METRICS_PER_WORKFLOW",
                ["tenant", "workflow_id", "outcome"],
                registry=registry,
            )
            if per_workflow
            else None
        )

    def count_batch(self, path: str) -> None:
        self.batches.labels(path=path).inc()

    def observe(self, events: Sequence[RunEvent]) -> None:
        """Count the run events the orchestrator committed (call it after the commit, once per batch).
        Counts are tallied over the batch first: a counter is incremented once per label set."""
        tally: dict[tuple[Counter, tuple[str, ...]], int] = {}

        def count(metric: Counter, *labels: str) -> None:
            tally[(metric, labels)] = tally.get((metric, labels), 0) + 1

        for event in events:
            kind = type(event)
            node_outcome = _NODE_OUTCOMES.get(kind)
            if node_outcome is not None:
                count(self.nodes, self._node_type(event.node_type), node_outcome)  # type: ignore[attr-defined]
                continue
            if kind in _FINISHED:
                self._finish(event, self._tenant(event.tenant_id), _FINISHED[kind], count)
            elif isinstance(event, RunStarted):
                tenant = self._tenant(event.tenant_id)
                facts = _RunFacts(
                    tenant, self._trigger(event.trigger.kind), str(event.workflow_id), event.occurred_at
                )
                self._remember(event.run_id, facts)
                count(self.started, tenant, facts.trigger)
                self._count_workflow(count, tenant, facts.workflow_id, "started")
                _log_run(
                    event,
                    "run started",
                    logging.DEBUG,
                    workflow_id=facts.workflow_id,
                    trigger=event.trigger.kind,
                )
            elif isinstance(event, RunThrottled):
                tenant = self._tenant(event.tenant_id)
                count(self.throttled, tenant, self._trigger(event.trigger.kind))
                self._count_workflow(count, tenant, str(event.workflow_id), "throttled")
                _log_run(
                    event, "run throttled", logging.INFO, workflow_id=event.workflow_id, reason=event.reason
                )
            elif isinstance(event, RunRetried):
                count(self.retried, self._tenant(event.tenant_id))
            elif isinstance(event, NodeRetryScheduled):
                count(self.node_retries, self._node_type(event.node_type))
            elif isinstance(event, ApprovalRequested):
                count(self.approvals_requested, self._tenant(event.tenant_id))
            elif isinstance(event, TimerScheduled):
                count(self.timers_scheduled, event.purpose)
        for (metric, labels), n in tally.items():
            metric.labels(*labels).inc(n)

    def _finish(self, event: RunEvent, tenant: str, outcome: str, count: Callable[..., None]) -> None:
        # A retried run may finish again: it was forgotten at its first end, so it counts as unknown.
        facts = self._runs.pop(event.run_id, None)
        count(self.finished, tenant, facts.trigger if facts else UNKNOWN, outcome)
        about: dict[str, object] = {}
        if facts is not None:
            seconds = max(0.0, (event.occurred_at - facts.started_at).total_seconds())
            self.duration.labels(outcome).observe(seconds)
            about = {
                "workflow_id": facts.workflow_id,
                "trigger": facts.trigger,
                "duration_ms": round(seconds * 1000, 1),
            }
        self._count_workflow(count, tenant, facts.workflow_id if facts else UNKNOWN, outcome)
        _log_run(event, "run finished", logging.INFO, outcome=outcome, **about)

    def _remember(self, run_id: UUID, facts: _RunFacts) -> None:
        self._runs[run_id] = facts
        while len(self._runs) > self._remembered_runs:
            self._runs.popitem(last=False)

    def _count_workflow(
        self, count: Callable[..., None], tenant: str, workflow_id: str, outcome: str
    ) -> None:
        if self.per_workflow is not None:
            count(self.per_workflow, tenant, workflow_id, outcome)


def _log_run(event: RunEvent, message: str, level: int, **ids: object) -> None:
    if log.isEnabledFor(level):
        log.log(level, message, extra={"ids": {"run_id": event.run_id, "tenant_id": event.tenant_id, **ids}})


class RunGauges:
    """Runs and timers as the database has them. Every orchestrator instance reports the same
    values, so dashboards and alerts take ``max`` over instances, never ``sum``."""

    name = "runs_and_timers"

    def __init__(
        self, registry: CollectorRegistry, engine: AsyncEngine, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self._engine = engine
        self._clock = clock
        self.running = Gauge("millrace_runs_running", "Runs started and not finished", registry=registry)
        self.waiting_for_approval = Gauge(
            "millrace_runs_waiting_for_approval", "Running runs paused at an approval node", registry=registry
        )
        self.oldest_idle = Gauge(
            "millrace_run_oldest_idle_seconds",
            "Among running runs with no timer set and no approval awaited, the longest time since a run's "
            "last event (0 when none): a run that nothing will wake up is stuck",
            registry=registry,
        )
        self.timers_pending = Gauge(
            "millrace_timers_pending", "Durable timers set and not fired", registry=registry
        )
        self.timers_due = Gauge(
            "millrace_timers_due", "Timers whose time has come and which have not fired", registry=registry
        )
        self.timers_overdue = Gauge(
            "millrace_timers_overdue",
            f"Timers still not fired {TIMER_OVERDUE_AFTER.total_seconds():g} s after their time",
            registry=registry,
        )
        self.timer_oldest_due_age = Gauge(
            "millrace_timer_oldest_due_age_seconds",
            "How late the most overdue unfired timer is (0 when none is due)",
            registry=registry,
        )

    async def collect(self) -> None:
        now = self._clock()
        waiting = (
            select(node_executions.c.run_id)
            .where(node_executions.c.status == "waiting")
            .where(node_executions.c.run_id == runs.c.run_id)
        )
        has_timer = select(timers.c.timer_id).where(timers.c.run_id == runs.c.run_id)
        async with self._engine.connect() as connection:
            running, waiting_count = (
                await connection.execute(
                    select(func.count(), func.count().filter(exists(waiting))).where(
                        runs.c.status == "running"
                    )
                )
            ).one()
            last_progress = (
                await connection.execute(
                    select(func.min(run_events.c.recorded_at))
                    .select_from(
                        runs.join(
                            run_events,
                            and_(run_events.c.run_id == runs.c.run_id, run_events.c.seq == runs.c.last_seq),
                        )
                    )
                    .where(runs.c.status == "running", ~exists(waiting), ~exists(has_timer))
                )
            ).scalar_one()
            pending, due, overdue, oldest_due = (
                await connection.execute(
                    select(
                        func.count(),
                        func.count().filter(timers.c.fire_at <= now),
                        func.count().filter(timers.c.fire_at <= now - TIMER_OVERDUE_AFTER),
                        func.min(timers.c.fire_at).filter(timers.c.fire_at <= now),
                    )
                )
            ).one()
        self.running.set(running)
        self.waiting_for_approval.set(waiting_count)
        self.oldest_idle.set(_age(now, last_progress))
        self.timers_pending.set(pending)
        self.timers_due.set(due)
        self.timers_overdue.set(overdue)
        self.timer_oldest_due_age.set(_age(now, oldest_due))


def _age(now: datetime, since: datetime | None) -> float:
    return max(0.0, (now - since).total_seconds()) if since is not None else 0.0
