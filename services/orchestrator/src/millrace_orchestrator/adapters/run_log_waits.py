"""The ``run_event_waits`` rows a batch of run events changes, written in the run log's statement: a
row for each ``wait_for_event`` node instance that waits for a record event (``node.scheduled``) or
keeps the record's earlier events (``event.wait_registered``), gone once the node settles or the run
ends. The trigger service reads them to send each record event to the runs waiting for it.

The statement's clauses all see the table as it was before it and may not change one row twice, so
the batch is folded first: a row the batch adds and settles is never written, and a run that ends
takes its rows' deletion with it."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.messages.run_events import (
    RUN_ENDINGS,
    NodeFailed,
    NodeScheduled,
    NodeSkipped,
    NodeSucceeded,
    RecordWaitRegistered,
    RunEvent,
)
from millrace_common.platform.bulk import Write, insert_write
from millrace_common.platform.tables import run_event_waits

_DELETE = (
    "delete from run_event_waits where (run_id, node_id) in (select cast(x->>'run_id' as uuid),"
    " x->>'node_id' from jsonb_array_elements(cast(:wait_deletes as jsonb)) x)"
    " or run_id in (select cast(x as uuid) from jsonb_array_elements_text(cast(:wait_ended as jsonb)) x)"
)
_ENDINGS = tuple(RUN_ENDINGS)


def record_wait_writes(
    events: Sequence[RunEvent], may_wait_for_records: Callable[[UUID], bool], now: datetime
) -> list[Write]:
    """The upserts and deletions of ``run_event_waits`` that ``events`` make (none for most batches)."""
    upserts: dict[tuple[UUID, str], dict[str, object]] = {}
    deletes: set[tuple[UUID, str]] = set()
    ended: set[UUID] = set()
    for event in events:
        key = (event.run_id, str(getattr(event, "node_id", "")))
        if isinstance(event, NodeScheduled) and event.node_type == "wait_for_event":
            if event.input.get("event") == "record":
                upserts[key] = _row(
                    event, str(event.input.get("pipeline_id")), event.input.get("record_id"), now
                )
                deletes.discard(key)
        elif isinstance(event, RecordWaitRegistered):
            upserts[key] = _row(event, event.pipeline_id, event.record_id, now)
            deletes.discard(key)
        elif (
            isinstance(event, NodeSucceeded | NodeFailed | NodeSkipped)
            and event.node_type == "wait_for_event"
        ):
            upserts.pop(key, None)
            deletes.add(key)
        elif isinstance(event, _ENDINGS) and may_wait_for_records(event.run_id):
            ended.add(event.run_id)
    upserts = {k: row for k, row in upserts.items() if k[0] not in ended}
    deletes = {k for k in deletes if k[0] not in ended}
    writes: list[Write] = []
    if deletes or ended:
        document = [{"run_id": str(r), "node_id": n} for r, n in sorted(deletes)]
        params = {"wait_deletes": json.dumps(document), "wait_ended": json.dumps(sorted(map(str, ended)))}
        writes.append(Write(_DELETE, params))
    if upserts:
        writes.append(
            insert_write(
                run_event_waits,
                list(upserts.values()),
                param="wait_rows",
                conflict_keys=("run_id", "node_id"),
                update_on_conflict=("pipeline_id", "record_id"),
            )
        )
    return writes


def _row(event: RunEvent, pipeline_id: str, record_id: object, now: datetime) -> dict[str, object]:
    return {
        "run_id": event.run_id,
        "node_id": str(getattr(event, "node_id", "")),
        "tenant_id": event.tenant_id,
        "pipeline_id": pipeline_id,
        "record_id": str(record_id),
        "created_at": now,
    }
