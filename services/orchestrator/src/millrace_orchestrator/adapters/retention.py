"""The run log's retention in PostgreSQL: the tenants' settings, finished runs old enough to go, their
events for an export, and the delete, each one short autocommit statement on a connection of its own
(never one the hot path waits for).

The delete names the runs with the ``last_seq`` their selection (and export) saw, and checks again,
under ``for update skip locked``, that each is still ended and has no later event: a run retried or
written to meanwhile is left alone, and a run the orchestrator is writing is skipped, not waited for."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from millrace_common.contracts.messages.run_events import RUN_ENDED_STATUSES
from millrace_common.platform.pg import DirectConnections, array_literal, execute

from millrace_orchestrator.domain.retention import RetentionRules, RunCandidate, Sweep, TenantRetention

ENDED = array_literal(sorted(RUN_ENDED_STATUSES))

_RULES = "select tenant_id, run_retention_days, export_before_prune from tenant_retention"
_CANDIDATES = (
    "select run_id, tenant_id, status, finished_at, last_seq from runs"
    " where finished_at is not null and finished_at < :before and status = any(cast(:ended as text[]))"
    " and (cast(:tenant as text) is null or tenant_id = :tenant)"
    " and tenant_id <> all(cast(:excluded as text[]))"
    " order by finished_at limit :limit"
)
_EVENTS = "select payload from run_events where run_id = any(cast(:runs as uuid[])) order by run_id, seq"
_DELETE = (
    "with doomed as ("
    "  select r.run_id from runs r"
    "  join unnest(cast(:runs as uuid[]), cast(:seqs as int[])) as seen(run_id, last_seq)"
    "    on r.run_id = seen.run_id and r.last_seq = seen.last_seq"
    "  where r.finished_at is not null and r.status = any(cast(:ended as text[]))"
    "  for update of r skip locked"
    "), gone_events as (delete from run_events where run_id in (select run_id from doomed)),"
    " gone_nodes as (delete from node_executions where run_id in (select run_id from doomed)),"
    " gone_timers as (delete from timers where run_id in (select run_id from doomed)),"
    # a re-run's link to its original (written by the gateway) goes with the re-run
    " gone_reruns as (delete from run_reruns where run_id in (select run_id from doomed))"
    " delete from runs where run_id in (select run_id from doomed) returning run_id"
)
_PROCESSED = (
    "delete from processed_messages where (consumer, message_id) in ("
    " select consumer, message_id from processed_messages where processed_at < :before"
    " order by processed_at limit :limit for update skip locked) returning 1"
)


class RunLogRetention:
    def __init__(self, direct: DirectConnections) -> None:
        self._direct = direct

    async def rules(self, *, default_keep: timedelta, shortest_keep: timedelta) -> RetentionRules:
        async with self._direct.connection() as connection:
            rows = await (await connection.execute(_RULES)).fetchall()
        tenants = {
            tenant_id: TenantRetention(timedelta(days=days) if days is not None else None, export)
            for tenant_id, days, export in rows
        }
        return RetentionRules(default_keep, shortest_keep, tenants)

    async def candidates(self, sweep: Sweep, *, limit: int) -> list[RunCandidate]:
        params = {
            "before": sweep.before,
            "ended": ENDED,
            "tenant": sweep.tenant_id,
            "excluded": array_literal(sorted(f'"{t}"' for t in sweep.excluded)),
            "limit": limit,
        }
        async with self._direct.connection() as connection:
            rows = await (await execute(connection, _CANDIDATES, params)).fetchall()
        return [RunCandidate(*row) for row in rows]

    async def event_lines(self, runs: Sequence[RunCandidate]) -> list[bytes]:
        """Every event of the runs as one JSON line each, run by run in seq order."""
        async with self._direct.connection() as connection:
            cursor = await execute(connection, _EVENTS, {"runs": array_literal(r.run_id for r in runs)})
            rows = await cursor.fetchall()
        return [json.dumps(row[0], separators=(",", ":")).encode() + b"\n" for row in rows]

    async def delete(self, runs: Sequence[RunCandidate]) -> list[UUID]:
        """Delete the runs with their events, node log and timers, those still as seen; their ids."""
        if not runs:
            return []
        params = {
            "runs": array_literal(r.run_id for r in runs),
            "seqs": array_literal(r.last_seq for r in runs),
            "ended": ENDED,
        }
        async with self._direct.connection() as connection:
            rows = await (await execute(connection, _DELETE, params)).fetchall()
        return [row[0] for row in rows]

    async def prune_processed(self, before: datetime, *, limit: int) -> int:
        """Delete up to ``limit`` processed-message claims older than ``before``; how many."""
        async with self._direct.connection() as connection:
            rows = await (
                await execute(connection, _PROCESSED, {"before": before, "limit": limit})
            ).fetchall()
        return len(rows)
