"""Accepted webhook calls, made durable together: concurrent calls share one statement (a group commit)
that claims their delivery ids and stores, for each call claimed, its run's ``StartRun`` in the outbox;
the rows then go to the live relay, which publishes them to ``runs.commands`` at once.

One statement, in autocommit, is one transaction: a call's claim and its ``StartRun`` are stored
together or not at all, and the caller is answered only once they are (so 202 still means durable).
A delivery id that was claimed before (by an earlier call, or by another call of the same batch)
stores nothing and is answered as a duplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.topics import RUNS_COMMANDS, Namespace
from millrace_common.platform.bulk import rows_document
from millrace_common.platform.group_commit import GroupCommit
from millrace_common.platform.live_relay import LiveRelay
from millrace_common.platform.pg import DirectConnections, execute

_INTAKE = (
    "with calls as (select * from jsonb_to_recordset(cast(:calls as jsonb)) as t(workflow_id uuid,"
    " delivery_id text, run_id uuid, received_at timestamptz, outcome text, reason text, value text, n int)),"
    " claimed as (insert into webhook_deliveries (workflow_id, delivery_id, run_id, received_at, outcome,"
    " reason) select workflow_id, delivery_id, run_id, received_at, outcome, reason from calls order by n"
    " on conflict do nothing returning workflow_id, delivery_id),"
    " sent as (insert into outbox (producer, topic, key, value, created_at)"
    " select :producer, :topic, convert_to(cast(c.run_id as text), 'UTF8'), convert_to(c.value, 'UTF8'),"
    " now() from calls c join claimed k using (workflow_id, delivery_id) where c.value is not null"
    " order by c.n returning id, key)"
    " select (select coalesce(string_agg(cast(workflow_id as text) || ' ' || delivery_id, chr(10)), '')"
    " from claimed), (select coalesce(string_agg(cast(id as text) || ' ' || convert_from(key, 'UTF8'),"
    " ','), '') from sent)"
)


@dataclass(frozen=True)
class Intake:
    """One accepted call to make durable: its claim, and its ``StartRun`` (as sent) when it starts a run."""

    workflow_id: UUID
    delivery_id: str
    run_id: UUID
    received_at: datetime
    outcome: str
    reason: str | None
    start_run: bytes | None


class WebhookIntake:
    def __init__(
        self,
        connections: DirectConnections,
        relay: LiveRelay,
        namespace: Namespace,
        *,
        max_batch: int = 256,
    ) -> None:
        self._connections = connections
        self._relay = relay
        self._topic = namespace.topic(RUNS_COMMANDS)
        self._group: GroupCommit[Intake, bool] = GroupCommit(self._write, max_batch=max_batch)

    @property
    def batches(self) -> int:
        return self._group.batches

    async def claim(self, intake: Intake) -> bool:
        """Store the call (with whoever else is waiting); False when its delivery id was claimed before."""
        return await self._group.submit(intake)

    async def _write(self, intakes: Sequence[Intake]) -> list[bool]:
        seen: set[tuple[UUID, str]] = set()
        firsts: list[Intake] = []
        for intake in intakes:
            if (intake.workflow_id, intake.delivery_id) not in seen:
                seen.add((intake.workflow_id, intake.delivery_id))
                firsts.append(intake)
        calls = rows_document(
            [
                {
                    "workflow_id": str(i.workflow_id),
                    "delivery_id": i.delivery_id,
                    "run_id": str(i.run_id),
                    "received_at": i.received_at.isoformat(),
                    "outcome": i.outcome,
                    "reason": i.reason,
                    "value": i.start_run.decode() if i.start_run is not None else None,
                    "n": n,
                }
                for n, i in enumerate(firsts)
            ]
        )
        params = {"calls": calls, "producer": self._relay.tag, "topic": self._topic}
        async with self._connections.connection() as connection:
            claimed_text, sent_text = (await (await execute(connection, _INTAKE, params)).fetchone()) or (
                "",
                "",
            )
        claimed = {tuple(line.split(" ", 1)) for line in claimed_text.splitlines() if line}
        ids: list[int] = []
        messages = []
        by_run = {str(i.run_id): i for i in firsts}
        for entry in filter(None, sent_text.split(",")):
            row_id, run_id = entry.split(" ", 1)
            start_run = by_run[run_id].start_run
            assert start_run is not None
            ids.append(int(row_id))
            messages.append((self._topic, run_id.encode(), start_run))
        if ids:
            # Sorted by row id: the relay publishes in the order rows were written.
            order = sorted(range(len(ids)), key=ids.__getitem__)
            # Not awaited: the 202 means durable, and must not wait for a Kafka that may be away.
            self._relay.hand_over_later([ids[k] for k in order], [messages[k] for k in order])
        answered: set[tuple[str, str]] = set()
        results = []
        for intake in intakes:
            key = (str(intake.workflow_id), intake.delivery_id)
            results.append(key in claimed and key not in answered)
            answered.add(key)
        return results
