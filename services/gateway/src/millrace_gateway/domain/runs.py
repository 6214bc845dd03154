"""Runs as the API names, shows and commands them. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import NAMESPACE_URL, UUID, uuid5

from millrace_common.contracts.json_values import JsonObject
from millrace_common.language.input_schema import input_problems
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform.refusals import FieldProblem

from millrace_gateway.domain.refusals import InputMismatch, WrongState

_MANUAL_RUNS = uuid5(NAMESPACE_URL, "millrace:manual-run")

CANCELLABLE = frozenset({"running", "paused"})
RETRYABLE = frozenset({"failed"})
CONTINUABLE = frozenset({"paused"})
SIGNALLABLE = frozenset({"running", "paused"})
RERUNNABLE = frozenset({"completed", "failed", "cancelled", "timed_out", "throttled"})


def manual_run_id(workflow_id: UUID, idempotency_key: str) -> UUID:
    """The same key for the same workflow names the same run, so a retried request starts one run."""
    return uuid5(_MANUAL_RUNS, f"{workflow_id}:{idempotency_key}")


def refuse_unless(status: str, allowed: frozenset[str]) -> None:
    """A command applies to a run only in the states ``allowed``."""
    if status not in allowed:
        raise WrongState(f"the run is {status}; this needs it to be {' or '.join(sorted(allowed))}")


def node_started_at(
    scheduled_at: datetime | None, finished_at: datetime | None, duration_ms: float | None
) -> datetime | None:
    """When a node's latest attempt was scheduled; a node the orchestrator evaluates itself is never
    scheduled, so it started when it finished less its duration."""
    if scheduled_at is not None:
        return scheduled_at
    if finished_at is not None and duration_ms is not None:
        return finished_at - timedelta(milliseconds=duration_ms)
    return None


def refuse_mismatched_input(definition: WorkflowDefinition, data: JsonObject) -> None:
    """A manual run's input must match the manual trigger's ``input_schema`` when it has one."""
    schema = definition.trigger.data.input_schema
    if schema is None:
        return
    problems = input_problems(schema, data)
    if problems:
        raise InputMismatch(
            f"the input does not match the workflow's input_schema ({len(problems)} problem(s))",
            *(FieldProblem("/body/input" + p.pointer, p.message) for p in problems),
        )
