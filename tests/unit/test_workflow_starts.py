"""What a batch decided on an unknown workflow load has its write check: per workflow, the runs it
starts, the most the running runs grew by at any start, and the limits."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from millrace_common.contracts.messages.node_commands import NodeError, NodeFailedResult
from millrace_common.contracts.messages.run_commands import StartRun, TriggerData
from millrace_common.language.workflow import WorkflowDefinition
from millrace_orchestrator.domain.decide import WorkflowLoad, WorkflowStarts, decide, starts_by_workflow
from millrace_orchestrator.domain.state import RunState

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def definition(**settings: object) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "nodes": [
                {"id": "start", "type": "trigger", "data": {"name": "Start", "kind": "manual"}},
                {
                    "id": "call",
                    "type": "http_request",
                    "data": {"name": "Call", "url": "http://example.test/x"},
                },
            ],
            "edges": [{"id": "e1", "source": "start", "target": "call"}],
            "settings": settings,
        }
    )


def test_runs_ended_before_a_start_make_room_for_it_and_the_strictest_limits_count():
    ids = (UUID(int=n) for n in itertools.count(1))
    workflow, other = uuid4(), uuid4()
    strict, loose = definition(max_concurrent_runs=2, max_executions_per_hour=50), definition()
    states: dict[UUID, RunState] = {}
    events = []

    def handle(message, state: RunState) -> None:
        decision = decide(state, message, now=NOW, new_id=lambda: next(ids), load=WorkflowLoad())
        states[message.run_id] = decision.state
        events.extend(decision.events)

    def start(run_id: UUID, workflow_id: UUID, version: WorkflowDefinition) -> None:
        message = StartRun(
            tenant_id="acme",
            run_id=run_id,
            workflow_id=workflow_id,
            workflow_version=1,
            trigger=TriggerData(kind="manual"),
            idempotency_key=str(run_id),
        )
        handle(message, states.get(run_id) or RunState(run_id=run_id, definition=version))

    running = uuid4()
    start(running, workflow, strict)
    events.clear()  # the batch begins with that run already running
    error = NodeError(type="http_error", message="400", retryable=False)
    failed = NodeFailedResult(
        tenant_id="acme", run_id=running, node_id="call", attempt=1, error=error, duration_ms=1
    )
    handle(failed, states[running])
    start(uuid4(), workflow, strict)
    start(uuid4(), workflow, loose)
    start(uuid4(), other, loose)

    assert [e.type for e in events if e.type.startswith("run.")] == [
        "run.failed",
        "run.started",
        "run.started",
        "run.started",
    ]
    assert starts_by_workflow(events, states) == {
        ("acme", workflow): WorkflowStarts(starts=2, peak=1, per_hour=50, concurrent=2),
        ("acme", other): WorkflowStarts(starts=1, peak=1, per_hour=100, concurrent=None),
    }
