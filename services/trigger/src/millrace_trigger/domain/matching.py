"""Which runs a record event asks for. Pure.

Candidates come from the trigger index (tenant, kind, pipeline); here each candidate's own filters
decide: pipeline ids, watched fields (``field_changed``), the condition tree over the trigger's data,
and the causation depth of the change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.records import (
    AnyRecordEvent,
    RecordCreated,
    RecordDeleted,
    RecordUpdated,
)
from millrace_common.language.conditions import ConditionError, evaluate

from millrace_trigger.domain.changes import changed_fields, watched_changes
from millrace_trigger.domain.firings import Candidate, Firing, Outcome, firing

TRIGGER_KINDS: dict[type, tuple[str, ...]] = {
    RecordCreated: ("record_created",),
    RecordUpdated: ("record_updated", "field_changed"),
    RecordDeleted: ("record_deleted",),
}


@dataclass(frozen=True)
class Filtered:
    """A candidate whose filters did not hold; nothing is recorded."""


def trigger_kinds(event: AnyRecordEvent) -> tuple[str, ...]:
    """The trigger kinds an event can fire; ``field_changed`` fires on updates only."""
    return TRIGGER_KINDS[type(event)]


def record_key(event_id: str, candidate: Candidate) -> str:
    """Source event id + workflow id: a redelivered event asks each workflow for the same run."""
    return f"{event_id}:{candidate.workflow_ref}"


def old_data(event: AnyRecordEvent, last_seen: JsonObject | None) -> JsonObject | None:
    """The record before this change: what the producer sent, else the last state this service saw."""
    sent = event.old_data if isinstance(event, (RecordUpdated, RecordDeleted)) else None
    if sent is not None:
        return sent
    return None if isinstance(event, RecordCreated) else last_seen


def state_after(event: AnyRecordEvent) -> JsonObject | None:
    """The record's state once the event happened; None once it is deleted."""
    return None if isinstance(event, RecordDeleted) else event.data


def match_record_event(
    event: AnyRecordEvent,
    candidates: Iterable[Candidate],
    *,
    last_seen: JsonObject | None,
    now: datetime,
    max_causation_depth: int,
) -> list[Firing]:
    """The firings an event causes: ``started`` ones and the ones recorded
    without a run (``too_deep``, ``no_baseline``, ``condition_error``)."""
    kinds = trigger_kinds(event)
    before = old_data(event, last_seen)
    after = state_after(event)
    event_id = str(event.message_id)
    base: JsonObject = {
        "record": {
            "id": event.record_id,
            "pipeline_id": event.pipeline_id,
            "data": after if after is not None else {},
            "old_data": before,
        },
        "event_type": event.type,
        "event_id": event_id,
        "occurred_at": event.occurred_at.isoformat(),
        "causation_depth": event.causation_depth,
    }
    if isinstance(event, RecordUpdated) and before is not None:
        base["changed_fields"] = list(changed_fields(before, event.data))
    firings = []
    seen = set()
    for candidate in candidates:
        if candidate.workflow_id in seen or candidate.kind not in kinds:
            continue
        seen.add(candidate.workflow_id)
        if candidate.config.pipeline_ids and event.pipeline_id not in candidate.config.pipeline_ids:
            continue
        decided = _record_firing(
            event, record_key(event_id, candidate), candidate, base, before, now, max_causation_depth
        )
        if isinstance(decided, Firing):
            firings.append(decided)
    return firings


def _record_firing(
    event: AnyRecordEvent,
    key: str,
    candidate: Candidate,
    base: JsonObject,
    before: JsonObject | None,
    now: datetime,
    max_causation_depth: int,
) -> Firing | Filtered:
    data = base
    if candidate.kind == "field_changed":
        assert isinstance(event, RecordUpdated)
        if before is None:
            reason = (
                "the record's earlier state is unknown: "
                "the event has no old_data and no earlier event was seen"
            )
            return firing(
                candidate,
                key=key,
                source="record",
                source_event_id=event.message_id,
                data=base,
                outcome=Outcome.NO_BASELINE,
                reason=reason,
            )
        changes = watched_changes(candidate.config.fields, before, event.data)
        if not changes:
            return Filtered()
        data = {**base, "changes": {c.field: {"old": c.old, "new": c.new} for c in changes}}
    verdict = conditions_verdict(candidate, data, now)
    if isinstance(verdict, Filtered):
        return verdict
    outcome, reason = verdict
    if outcome is Outcome.STARTED and event.causation_depth + 1 > max_causation_depth:
        outcome = Outcome.TOO_DEEP
        reason = (
            f"the change was made by a chain of {event.causation_depth} run(s); the changes of another run "
            f"would exceed the causation depth limit of {max_causation_depth}"
        )
    return firing(
        candidate,
        key=key,
        source="record",
        source_event_id=event.message_id,
        data=data,
        outcome=outcome,
        reason=reason,
        causation_depth=event.causation_depth,
    )


def conditions_verdict(
    candidate: Candidate, data: JsonObject, now: datetime
) -> tuple[Outcome, str | None] | Filtered:
    """Whether the trigger's condition tree holds for what templates will see as ``trigger``."""
    conditions = candidate.config.conditions
    if conditions is None:
        return Outcome.STARTED, None
    context = {
        "trigger": {"kind": candidate.kind, **data},
        "workflow": {"id": candidate.workflow_ref, "version": candidate.workflow_version},
        "vars": {},
        "nodes": {},
    }
    try:
        holds = evaluate(conditions, context, now=now)
    except ConditionError as error:
        return Outcome.CONDITION_ERROR, f"the trigger's conditions cannot be evaluated: {error}"
    return (Outcome.STARTED, None) if holds else Filtered()


def dedupe(firings: Sequence[Firing]) -> list[Firing]:
    """The first firing of each idempotency key (a batch may hold one event twice)."""
    seen: set[str] = set()
    unique = []
    for item in firings:
        if item.idempotency_key not in seen:
            seen.add(item.idempotency_key)
            unique.append(item)
    return unique
