"""Firings: a trigger's decision about one run, whether it starts it or records why not. Pure.

Every firing has an idempotency key (source event id + workflow id, or the schedule slot); the run id
is derived from it, so deciding twice names the same run. Only ``started`` firings ask for a run;
every other outcome is recorded with its reason and counted, never dropped silently. Whether the
run may start (``max_executions_per_hour``, ``max_concurrent_runs``) is the orchestrator's to judge:
it sees every start, manual ones included, and answers ``run.throttled`` with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Literal
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.run_commands import StartRun, TriggerData
from millrace_common.contracts.messages.webhooks import run_id_for_key
from millrace_common.language.workflow import TriggerConfig

Source = Literal["record", "schedule", "kafka"]


class Outcome(StrEnum):
    STARTED = "started"
    TOO_DEEP = "too_deep"
    NO_BASELINE = "no_baseline"
    CONDITION_ERROR = "condition_error"
    MISSED = "missed"


@dataclass(frozen=True)
class Candidate:
    """An active workflow whose trigger may fire: its pinned version and its trigger's config."""

    workflow_id: UUID
    workflow_version: int
    tenant_id: str
    config: TriggerConfig

    @cached_property
    def kind(self) -> str:
        return self.config.kind

    @cached_property
    def workflow_ref(self) -> str:
        """The workflow id as text, made once: it goes into every idempotency key."""
        return str(self.workflow_id)


@dataclass(frozen=True)
class Firing:
    idempotency_key: str
    tenant_id: str
    workflow_id: UUID
    workflow_version: int
    kind: str
    source: Source
    source_event_id: UUID | None
    data: JsonObject
    outcome: Outcome
    reason: str | None = None
    causation_depth: int = 0
    """The depth of the record change that caused the firing; the run's own record changes go one deeper."""

    @cached_property
    def run_id(self) -> UUID:
        """Made once (a SHA-1 of the key): the StartRun, its outbox row and the firing's record use it."""
        return run_id_for_key(self.idempotency_key)

    def start_run(self) -> StartRun:
        run_id = self.run_id
        return StartRun(
            tenant_id=self.tenant_id,
            correlation_id=run_id,
            causation_id=self.source_event_id,
            run_id=run_id,
            workflow_id=self.workflow_id,
            workflow_version=self.workflow_version,
            trigger=TriggerData(
                kind=self.kind,
                source_event_id=self.source_event_id,
                data=self.data,
                causation_depth=self.causation_depth,
            ),
            idempotency_key=self.idempotency_key,
        )


def firing(
    candidate: Candidate,
    *,
    key: str,
    source: Source,
    source_event_id: UUID | None,
    data: JsonObject,
    outcome: Outcome = Outcome.STARTED,
    reason: str | None = None,
    causation_depth: int = 0,
) -> Firing:
    return Firing(
        idempotency_key=key,
        tenant_id=candidate.tenant_id,
        workflow_id=candidate.workflow_id,
        workflow_version=candidate.workflow_version,
        kind=candidate.kind,
        source=source,
        source_event_id=source_event_id,
        data=data,
        outcome=outcome,
        reason=reason,
        causation_depth=causation_depth,
    )
