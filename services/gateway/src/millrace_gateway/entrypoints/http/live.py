"""Live run events over Server-Sent Events: one run's events from its log and then as they happen, and
every run of one workflow from the moment of connecting."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from millrace_common.tables import run_events, runs, workflows
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Send

from millrace_gateway.adapters.run_event_feed import HISTORY_PAGE, RunEventFeed, owned_run, run_history
from millrace_gateway.domain.live import TERMINAL_TYPES, LiveEvent, sse_comment, sse_message
from millrace_gateway.entrypoints.http.deps import EngineDep, Reader, SettingsDep
from millrace_gateway.entrypoints.http.errors import ApiError, not_found

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["live"])

SEQ_LIMIT = 2**31 - 1
FEED_READY_SECONDS = 10.0
RECENT_EVENTS = 10_000
"""How many events a workflow stream remembers to drop redeliveries of."""
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
SSE_RESPONSE = {200: {"content": {"text/event-stream": {}}, "description": "A stream of Server-Sent Events"}}
TERMINAL_STATUSES = frozenset(t.removeprefix("run.") for t in TERMINAL_TYPES)


class EventStreamResponse(StreamingResponse):
    """A streaming response that closes its event generator however the response ends. Starlette
    stops iterating when the client goes away (the task is cancelled, or the write fails) but leaves
    a generator paused at a ``yield`` to the garbage collector: until then the stream would still
    follow its run, hold its inbox and be counted as open."""

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            try:
                await self.body_iterator.aclose()  # type: ignore[attr-defined]
            except Exception:
                # Not in place of whatever ended the response.
                log.exception("closing a live stream failed")


def _feed(request: Request) -> RunEventFeed:
    return request.app.state.feed


FeedDep = Annotated[RunEventFeed, Depends(_feed)]


@router.get("/runs/{run_id}/events", response_class=EventStreamResponse, responses=SSE_RESPONSE)
async def follow_run(
    run_id: UUID,
    reader: Reader,
    engine: EngineDep,
    feed: FeedDep,
    settings: SettingsDep,
    after: Annotated[int | None, Query(ge=0, le=SEQ_LIMIT, description="Resume after this seq")] = None,
    last_event_id: Annotated[
        int | None, Header(ge=0, le=SEQ_LIMIT, description="Resume after this seq; wins over `after`")
    ] = None,
) -> EventStreamResponse:
    """Every event of the run in log order (``id`` = seq), then live ones; ends after the run's terminal
    event. A run asked for a moment ago may not be in the log yet: the stream waits a few seconds for it."""
    await _feed_ready(feed)
    deadline = asyncio.get_running_loop().time() + settings.live_run_wait_seconds
    while not await owned_run(engine, reader.tenant_id, run_id):
        if asyncio.get_running_loop().time() >= deadline:
            raise not_found("run")
        await asyncio.sleep(0.2)
    start = last_event_id if last_event_id is not None else after or 0
    stream = _run_stream(feed, engine, reader.tenant_id, run_id, start, settings.live_heartbeat_seconds)
    return EventStreamResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


@router.get("/workflows/{workflow_id}/events", response_class=EventStreamResponse, responses=SSE_RESPONSE)
async def follow_workflow(
    workflow_id: UUID, reader: Reader, engine: EngineDep, feed: FeedDep, settings: SettingsDep
) -> EventStreamResponse:
    """Events of every run of the workflow from now on (``id`` = ``<run_id>/<seq>``); never ends by itself."""
    async with engine.connect() as connection:
        found = await connection.execute(
            select(workflows.c.id).where(
                workflows.c.id == workflow_id, workflows.c.tenant_id == reader.tenant_id
            )
        )
        if found.first() is None:
            raise not_found("workflow")
    await _feed_ready(feed)
    stream = _workflow_stream(feed, reader.tenant_id, workflow_id, settings.live_heartbeat_seconds)
    return EventStreamResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


async def _feed_ready(feed: RunEventFeed) -> None:
    try:
        await asyncio.wait_for(feed.ready.wait(), FEED_READY_SECONDS)
    except TimeoutError as error:
        raise ApiError(503, "unavailable", "live events are not available yet; try again shortly") from error


async def _run_stream(
    feed: RunEventFeed, engine: AsyncEngine, tenant_id: str, run_id: UUID, after: int, heartbeat: float
) -> AsyncIterator[bytes]:
    # Following starts before the log is read: an event committed after the read is then in the inbox,
    # one committed before it is in the log (the orchestrator publishes only after committing), and
    # seq numbers drop what arrives both ways.
    async with feed.follow_run(tenant_id, run_id) as follower:
        yield sse_comment("following run")
        last = after
        ended = False
        async for event in _logged(engine, tenant_id, run_id, after=last):
            yield sse_message(str(event.seq), event)
            last, ended = event.seq, event.ends_run
        if ended or await _finished(engine, run_id, last):
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
            async for logged in _logged(engine, tenant_id, run_id, after=last):
                yield sse_message(str(logged.seq), logged)
                last = logged.seq
                if logged.ends_run:
                    return


async def _workflow_stream(
    feed: RunEventFeed, tenant_id: str, workflow_id: UUID, heartbeat: float
) -> AsyncIterator[bytes]:
    async with feed.follow_workflow(tenant_id, workflow_id) as follower:
        yield sse_comment("following workflow")
        sent: OrderedDict[tuple[UUID, int], None] = OrderedDict()
        while True:
            event = await follower.next(timeout=heartbeat)
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


async def _logged(
    engine: AsyncEngine, tenant_id: str, run_id: UUID, *, after: int
) -> AsyncIterator[LiveEvent]:
    while True:
        page = await run_history(engine, tenant_id, run_id, after=after)
        for event in page:
            yield event
        if len(page) < HISTORY_PAGE:
            return
        after = page[-1].seq


async def _finished(engine: AsyncEngine, run_id: UUID, last: int) -> bool:
    """The run has ended and the stream has already passed its last event (a reconnect after the end)."""
    newest = select(func.max(run_events.c.seq)).where(run_events.c.run_id == run_id).scalar_subquery()
    async with engine.connect() as connection:
        query = select(runs.c.status, newest.label("newest")).where(runs.c.run_id == run_id)
        row = (await connection.execute(query)).first()
    return row is not None and row.status in TERMINAL_STATUSES and (row.newest or 0) <= last
