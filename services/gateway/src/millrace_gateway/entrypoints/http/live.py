"""Live run events over Server-Sent Events: one run's events from its log and then as they happen, and
every run of one workflow from the moment of connecting (``service_layer.live``)."""

from __future__ import annotations

import logging
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query
from fastapi.responses import StreamingResponse
from starlette.types import Send

from millrace_gateway.entrypoints.http.deps import LiveDep, Reader

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v1", tags=["live"])

SEQ_LIMIT = 2**31 - 1
STREAM_HEADERS = {"cache-control": "no-cache", "x-accel-buffering": "no"}
SSE_RESPONSE = {200: {"content": {"text/event-stream": {}}, "description": "A stream of Server-Sent Events"}}


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


@router.get("/runs/{run_id}/events", response_class=EventStreamResponse, responses=SSE_RESPONSE)
async def follow_run(
    run_id: UUID,
    reader: Reader,
    live: LiveDep,
    after: Annotated[int | None, Query(ge=0, le=SEQ_LIMIT, description="Resume after this seq")] = None,
    last_event_id: Annotated[
        int | None, Header(ge=0, le=SEQ_LIMIT, description="Resume after this seq; wins over `after`")
    ] = None,
) -> EventStreamResponse:
    """Every event of the run in log order (``id`` = seq), then live ones; ends after the run's terminal
    event. A run asked for a moment ago may not be in the log yet: the stream waits a few seconds for it."""
    start = last_event_id if last_event_id is not None else after or 0
    stream = await live.follow_run(reader.tenant_id, run_id, after=start)
    return EventStreamResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


@router.get("/workflows/{workflow_id}/events", response_class=EventStreamResponse, responses=SSE_RESPONSE)
async def follow_workflow(workflow_id: UUID, reader: Reader, live: LiveDep) -> EventStreamResponse:
    """Events of every run of the workflow from now on (``id`` = ``<run_id>/<seq>``); never ends by itself."""
    stream = await live.follow_workflow(reader.tenant_id, workflow_id)
    return EventStreamResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)
