"""Use case: a polled batch of ``records.events`` (decoded) starts the runs its events trigger."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.records import AnyRecordEvent, RecordUpdated
from millrace_common.language.workflow_configs.triggers import ANY_PIPELINE
from millrace_common.platform.consuming import Delivery
from millrace_common.platform.pg import Pending, Statements

from millrace_trigger.adapters.event_waits import send_waiting, waiting_from
from millrace_trigger.adapters.store import IndexKey, RecordKey
from millrace_trigger.domain.firings import Firing
from millrace_trigger.domain.matching import TRIGGER_KINDS, match_record_event, state_after
from millrace_trigger.domain.waits import record_event_deliveries
from millrace_trigger.service_layer.firings import ConsumerShell


class RecordEventHandler:
    """``records.events``: match each event to the candidates of its tenant, kind and pipeline."""

    def __init__(self, shell: ConsumerShell, *, max_causation_depth: int) -> None:
        self._shell = shell
        self._max_depth = max_causation_depth

    async def handle(self, deliveries: Sequence[Delivery[Any]]) -> None:
        shell = self._shell
        async with shell.transaction() as connection:
            now = shell.clock.now()
            # What does not depend on another statement's answer is sent at once, for every event
            # delivered (a redelivered one, known by its position, is left out after): the positions,
            # the trigger index's versions and the runs waiting for these records, one round trip.
            delivered: list[AnyRecordEvent] = [d.message for d in deliveries]
            moves = await shell.send_moves(connection, deliveries)
            versions = await shell.store.send_index_versions(connection, (e.tenant_id for e in delivered))
            waits = await send_waiting(connection, (_record_key(e) for e in delivered))
            events: list[AnyRecordEvent] = [d.message for d in await moves.fresh()]
            firings = await self._decide(connection, events, now, versions)
            waiting = await waiting_from(waits)
            deliveries = record_event_deliveries(
                events, [(w.record, str(w.run_id), w.node_id) for w in waiting]
            )
            sent = await shell.ledger.send(connection, firings, now, also=deliveries)
        # Read once committed: the firings' answers came with the COMMIT's, one round trip for both.
        await shell.publish(await sent.settled(), "record")

    async def _decide(
        self,
        connection: Statements,
        events: Sequence[AnyRecordEvent],
        now: datetime,
        versions: Pending | None,
    ) -> list[Firing]:
        shell = self._shell
        if not events:
            return []
        lookups = [_lookups(e) for e in events]
        index = await shell.store.candidates(connection, (k for keys in lookups for k in keys), versions)
        candidates = [[c for k in keys for c in index.get(k, ())] for keys in lookups]
        watched = [any(c.kind == "field_changed" for c in found) for found in candidates]
        derive = {
            _record_key(e)
            for e, w in zip(events, watched, strict=True)
            if w and isinstance(e, RecordUpdated) and e.old_data is None
        }
        last_seen: dict[RecordKey, JsonObject | None] = dict(await shell.store.last_seen(connection, derive))
        remembered: dict[RecordKey, tuple[JsonObject | None, UUID]] = {}
        firings: list[Firing] = []
        for event, found, is_watched in zip(events, candidates, watched, strict=True):
            key = _record_key(event)
            if found:
                firings.extend(
                    match_record_event(
                        event,
                        found,
                        last_seen=last_seen.get(key),
                        now=now,
                        max_causation_depth=self._max_depth,
                    )
                )
            if is_watched:
                last_seen[key] = state_after(event)
                remembered[key] = (last_seen[key], event.message_id)
        await shell.store.remember(connection, remembered, now)
        return firings


def _lookups(event: AnyRecordEvent) -> list[IndexKey]:
    # field_changed is looked up for every event: its workflows need the record's states remembered.
    kinds = _LOOKED_UP[type(event)]
    return [
        (event.tenant_id, kind, pipeline) for kind in kinds for pipeline in (event.pipeline_id, ANY_PIPELINE)
    ]


_LOOKED_UP = {
    kind: tuple(sorted({*trigger_kinds_of, "field_changed"}))
    for kind, trigger_kinds_of in TRIGGER_KINDS.items()
}


def _record_key(event: AnyRecordEvent) -> RecordKey:
    return (event.tenant_id, event.pipeline_id, event.record_id)
