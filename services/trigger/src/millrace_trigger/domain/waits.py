"""Record events for the runs that wait for them: one ``run.record_event`` command per waiting node
instance and event, in the order the events came. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from millrace_common.contracts.messages.records import AnyRecordEvent, RecordDeleted
from millrace_common.contracts.messages.run_commands import DeliverRecordEvent
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import RUNS_COMMANDS

RecordKey = tuple[str, str, str]


def record_event_deliveries(
    events: Sequence[AnyRecordEvent], waiting: Sequence[tuple[RecordKey, str, str]]
) -> list[Outgoing]:
    """``waiting``: (record, run id, node id) for each node instance that waits for the record."""
    by_record: dict[RecordKey, list[tuple[str, str]]] = {}
    for record, run_id, node_id in waiting:
        by_record.setdefault(record, []).append((run_id, node_id))
    deliveries: list[Outgoing] = []
    for event in events:
        for run_id, node_id in by_record.get((event.tenant_id, event.pipeline_id, event.record_id), ()):
            command = DeliverRecordEvent(
                tenant_id=event.tenant_id,
                correlation_id=run_id,
                causation_id=event.message_id,
                run_id=run_id,
                node_id=node_id,
                event_id=event.message_id,
                event_type=event.type,
                pipeline_id=event.pipeline_id,
                record_id=event.record_id,
                data=None if isinstance(event, RecordDeleted) else event.data,
                old_data=getattr(event, "old_data", None),
                occurred_at=event.occurred_at,
            )
            deliveries.append(Outgoing(RUNS_COMMANDS, run_id, command))
    return deliveries
