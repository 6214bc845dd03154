"""The runs waiting for record events (``run_event_waits``, which the orchestrator writes with the
runs' events): looked up for the records of a batch of record events, one index probe per record."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from millrace_common.platform.pg import Pending, Statements

from millrace_trigger.adapters.store import RecordKey

_WAITING = (
    "select w.run_id, w.node_id, w.tenant_id, w.pipeline_id, w.record_id from run_event_waits w"
    " join unnest(cast(:tenants as text[]), cast(:pipelines as text[]), cast(:records as text[]))"
    " as k(tenant_id, pipeline_id, record_id)"
    " on w.tenant_id = k.tenant_id and w.pipeline_id = k.pipeline_id and w.record_id = k.record_id"
)


@dataclass(frozen=True)
class WaitingNode:
    run_id: UUID
    node_id: str
    record: RecordKey


async def send_waiting(connection: Statements, records: Iterable[RecordKey]) -> Pending | None:
    """The node instances waiting for events of these (tenant, pipeline, record) records, asked;
    :func:`waiting_from` reads the answer."""
    keys = sorted(set(records))
    if not keys:
        return None
    return await connection.send(
        _WAITING,
        {
            "tenants": [k[0] for k in keys],
            "pipelines": [k[1] for k in keys],
            "records": [k[2] for k in keys],
        },
    )


async def waiting_from(sent: Pending | None) -> list[WaitingNode]:
    if sent is None:
        return []
    return [
        WaitingNode(row.run_id, row.node_id, (row.tenant_id, row.pipeline_id, row.record_id))
        for row in await sent.rows()
    ]
