"""Which runs a record event asks for. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from millrace_common.messages.records import AnyRecordEvent, RecordCreated, RecordDeleted, RecordUpdated
from millrace_common.messages.run_commands import StartRun, TriggerData

TRIGGER_KIND = {RecordCreated: "record_created", RecordUpdated: "record_updated", RecordDeleted: "record_deleted"}
_RUN_IDS = uuid5(NAMESPACE_URL, "millrace:run")


@dataclass(frozen=True)
class Candidate:
    """An active workflow whose trigger kind and pipeline fit the event."""

    workflow_id: UUID
    workflow_version: int


def trigger_kind(event: AnyRecordEvent) -> str:
    return TRIGGER_KIND[type(event)]


def run_id_for(idempotency_key: str) -> UUID:
    """Runs are named by their idempotency key, so a redelivered event asks for the same run."""
    return uuid5(_RUN_IDS, idempotency_key)


def start_runs(event: AnyRecordEvent, candidates: list[Candidate]) -> list[StartRun]:
    record = {
        "id": event.record_id,
        "pipeline_id": event.pipeline_id,
        "data": getattr(event, "data", None) or {},
        "old_data": getattr(event, "old_data", None),
    }
    commands = []
    for candidate in candidates:
        key = f"{event.message_id}:{candidate.workflow_id}"
        run_id = run_id_for(key)
        commands.append(
            StartRun(
                tenant_id=event.tenant_id,
                correlation_id=run_id,
                causation_id=event.message_id,
                run_id=run_id,
                workflow_id=candidate.workflow_id,
                workflow_version=candidate.workflow_version,
                trigger=TriggerData(
                    kind=trigger_kind(event),
                    source_event_id=event.message_id,
                    data={"record": record, "event_type": event.type},
                ),
                idempotency_key=key,
            )
        )
    return commands
