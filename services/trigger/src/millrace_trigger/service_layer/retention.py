"""Use case: prune what the trigger service keeps only for a while."""

from __future__ import annotations

import logging
from datetime import timedelta

from millrace_common.platform.pg import DirectConnections

from millrace_trigger.adapters.clock import Clock
from millrace_trigger.adapters.store import TriggerStore

log = logging.getLogger(__name__)

SHORTEST_KEEP = timedelta(hours=2)
"""Firings are the exactly-once record of the events that caused them: they outlive any redelivery."""


class Retention:
    """Prunes firings and webhook delivery ids past the retention period."""

    def __init__(
        self, database: DirectConnections, store: TriggerStore, clock: Clock, *, keep: timedelta
    ) -> None:
        self._database = database
        self._store = store
        self._clock = clock
        self._keep = max(keep, SHORTEST_KEEP)

    async def prune(self) -> int:
        """Remove what is older than the retention period; returns how many rows."""
        removed = await self._store.prune(self._database, self._clock.now() - self._keep)
        if removed:
            log.info("pruned old firings and delivery ids", extra={"ids": {"removed": removed}})
        return removed
