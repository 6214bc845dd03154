"""Live run events as Server-Sent Events: one run's events from its log and then as they happen, and
every run of one workflow from the moment of following. The run log (PostgreSQL) and the live feed
(``runs.events``) are merged by seq, so a stream neither misses nor repeats an event."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import runs, workflows
from millrace_gateway.adapters.run_event_feed import RunEventFeed
from millrace_gateway.domain.live import TERMINAL_STATUSES, LiveEvent, sse_comment, sse_message
from millrace_gateway.domain.refusals import LiveUnavailable, NotFound

FEED_READY_SECONDS = 10.0
RECENT_EVENTS = 10_000
"""How many events a workflow stream remembers to drop redeliveries of."""


class LiveRuns:
    def __init__(
        self, engine: AsyncEngine, feed: RunEventFeed, *, heartbeat_seconds: float, run_wait_seconds: float
    ) -> None:
        self._engine = engine
        self._feed = feed
        self._heartbeat = heartbeat_seconds
        self._run_wait = run_wait_seconds

    async def follow_run(self, tenant_id: str, run_id: UUID, *, after: int) -> AsyncIterator[bytes]:
        """The run's events after seq ``after`` in log order, then live ones; the stream ends after the
        run's terminal event. A run asked for a moment ago may not be in the log yet: this waits a few
        seconds for it before it is not found."""
        await self._feed_ready()
        clock = asyncio.get_running_loop()
        deadline = clock.time() + self._run_wait
        while not await self._owned_run(tenant_id, run_id):
            if clock.time() >= deadline:
                raise NotFound("run")
            await asyncio.sleep(0.2)
        return self._run_stream(tenant_id, run_id, after)

    async def follow_workflow(self, tenant_id: str, workflow_id: UUID) -> AsyncIterator[bytes]:
        """The events of every run of the workflow from now on; the stream never ends by itself."""
        async with self._engine.connect() as connection:
            if not await workflows.exists(connection, tenant_id, workflow_id):
                raise NotFound("workflow")
        await self._feed_ready()
        return self._workflow_stream(tenant_id, workflow_id)

    async def _feed_ready(self) -> None:
        try:
            await asyncio.wait_for(self._feed.ready.wait(), FEED_READY_SECONDS)
        except TimeoutError as error:
            raise LiveUnavailable("live events are not available yet; try again shortly") from error

    async def _owned_run(self, tenant_id: str, run_id: UUID) -> bool:
        async with self._engine.connect() as connection:
            return await runs.owned(connection, tenant_id, run_id)

    async def _run_stream(self, tenant_id: str, run_id: UUID, after: int) -> AsyncIterator[bytes]:
        # Following starts before the log is read: an event committed after the read is then in the
        # inbox, one committed before it is in the log (the orchestrator publishes only after
        # committing), and seq numbers drop what arrives both ways.
        heartbeat = self._heartbeat
        async with self._feed.follow_run(tenant_id, run_id) as follower:
            yield sse_comment("following run")
            last = after
            ended = False
            async for event in self._logged(tenant_id, run_id, after=last):
                yield sse_message(str(event.seq), event)
                last, ended = event.seq, event.ends_run
            if ended or await self._finished(run_id, last):
                return
            clock = asyncio.get_running_loop()
            next_beat = clock.time() + heartbeat
            while True:
                event = await follower.next(timeout=max(0.0, next_beat - clock.time()))
                if event is not None and event.seq <= last:
                    continue
                if event is not None and event.seq == last + 1:
                    yield sse_message(str(event.seq), event)
                    last = event.seq
                    if event.ends_run:
                        return
                    next_beat = clock.time() + heartbeat
                    continue
                if follower.closing:
                    yield sse_comment("server stopping: reconnect with Last-Event-ID")
                    return
                # A gap, an overflowed inbox or a quiet spell: the log has everything the topic had.
                if follower.overflowed:
                    follower.reset()
                elif event is None:
                    yield sse_comment("heartbeat")
                    next_beat = clock.time() + heartbeat
                async for logged in self._logged(tenant_id, run_id, after=last):
                    yield sse_message(str(logged.seq), logged)
                    last = logged.seq
                    if logged.ends_run:
                        return

    async def _workflow_stream(self, tenant_id: str, workflow_id: UUID) -> AsyncIterator[bytes]:
        async with self._feed.follow_workflow(tenant_id, workflow_id) as follower:
            yield sse_comment("following workflow")
            sent: OrderedDict[tuple[UUID, int], None] = OrderedDict()
            while True:
                event = await follower.next(timeout=self._heartbeat)
                if event is None:
                    if follower.closing:
                        yield sse_comment("server stopping: reconnect")
                        return
                    if follower.overflowed:
                        yield sse_comment("too slow: events were dropped; reconnect and read the runs")
                        return
                    yield sse_comment("heartbeat")
                    continue
                key = (event.run_id, event.seq)
                if key in sent:
                    continue
                sent[key] = None
                if len(sent) > RECENT_EVENTS:
                    sent.popitem(last=False)
                yield sse_message(f"{event.run_id}/{event.seq}", event)

    async def _logged(self, tenant_id: str, run_id: UUID, *, after: int) -> AsyncIterator[LiveEvent]:
        while True:
            async with self._engine.connect() as connection:
                page = await runs.history(connection, tenant_id, run_id, after=after)
            for event in page:
                yield event
            if len(page) < runs.HISTORY_PAGE:
                return
            after = page[-1].seq

    async def _finished(self, run_id: UUID, last: int) -> bool:
        """The run has ended and the stream has already passed its last event (a reconnect after the
        end)."""
        async with self._engine.connect() as connection:
            row = await runs.status_and_last_seq(connection, run_id)
        return row is not None and row.status in TERMINAL_STATUSES and (row.newest or 0) <= last
