"""The orchestrator's use case: a polled batch of run commands and node results is loaded, decided
(``domain.batch.decide_batch``, pure), committed to the run log in one write, and the outbox rows the
write returned are handed to the relay. A single message is a batch of one."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from uuid import UUID, uuid4

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.run_events import RunEvent

from millrace_orchestrator.domain.batch import BatchDecision, decide_batch
from millrace_orchestrator.domain.decide import DEFAULT_SUB_WORKFLOW_MAX_DEPTH, Message
from millrace_orchestrator.service_layer.ports import Relay, RunLog, WriteConflict

log = logging.getLogger(__name__)
Reject = Callable[[Message, str], Awaitable[None]]


class RunMessages:
    def __init__(
        self,
        run_log: RunLog,
        relay: Relay,
        *,
        clock: Callable[[], datetime] = utc_now,
        new_id: Callable[[], UUID] = uuid4,
        observe: Callable[[Sequence[RunEvent]], None] = lambda events: None,
        count_batch: Callable[[str], None] = lambda path: None,
        max_depth: int = DEFAULT_SUB_WORKFLOW_MAX_DEPTH,
    ) -> None:
        self._max_depth = max_depth
        self._log = run_log
        self._relay = relay
        self._clock = clock
        self._new_id = new_id
        self._observe = observe
        self._count_batch = count_batch

    async def handle(self, messages: Sequence[Message], reject: Reject) -> None:
        """Handle a batch: a message naming no known run or workflow version is passed to ``reject``
        (a dead letter) before the write, which claims it. When another writer got in between (an
        instance still owning a run during a rebalance, or a duplicate delivered to both), nothing
        of the batch is written and its messages are handled one by one, each read first."""
        try:
            await self._handle(messages, reject, read=False)
        except WriteConflict:
            log.warning("batch conflicted with another writer; handling its messages one by one")
            for message in {m.message_id: m for m in messages}.values():
                await self._handle([message], reject, read=True)

    async def _handle(self, messages: Sequence[Message], reject: Reject, *, read: bool) -> None:
        now = self._clock()
        loaded = await self._log.load(messages, now=now, read=read)
        decision = decide_batch(messages, loaded, now=now, new_id=self._new_id, max_depth=self._max_depth)
        if loaded.assumed:
            if await self._commit_assumed(decision, now):
                return
            loaded = await self._log.load(messages, now=now, read=True)
            decision = decide_batch(messages, loaded, now=now, new_id=self._new_id, max_depth=self._max_depth)
        if decision.skipped:
            log.info("duplicate messages skipped", extra={"ids": {"count": decision.skipped}})
        for message, reason in decision.rejected:
            await reject(message, reason)
        await self._commit(decision, now, "read")

    async def _commit_assumed(self, decision: BatchDecision, now: datetime) -> bool:
        """Commit a decision made on remembered states and an assumed load; False (nothing written)
        when it is refused or its assumptions no longer hold, so it must be read and made again."""
        why = decision.refused
        if why is None:
            try:
                await self._commit(decision, now, "cached")
                return True
            except WriteConflict as conflict:
                why = str(conflict)
        self._count_batch("cached_refused")
        log.debug("batch decided on cached states refused; reading first", extra={"ids": {"why": why}})
        return False

    async def _commit(self, decision: BatchDecision, now: datetime, path: str) -> None:
        committed = await self._log.commit(decision, now=now)
        await self._relay.hand_over(committed.outbox_ids, committed.messages)
        self._count_batch(path)
        self._observe(decision.events)
