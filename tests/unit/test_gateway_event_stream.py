"""A live stream's generator is closed as soon as its response ends, not when the garbage collector
gets to it (nor when the event loop ends, which closes what is left: hence the checks inside the
loop): until it is closed the stream still follows its run and is counted as open."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator, Iterator

import pytest
from millrace_gateway.entrypoints.http.live import EventStreamResponse
from starlette.requests import ClientDisconnect


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def endless(closed: list[str]) -> AsyncIterator[bytes]:
    async def events() -> AsyncIterator[bytes]:
        try:
            while True:
                yield b": heartbeat\n\n"
                await asyncio.sleep(0)
        finally:
            closed.append("closed")

    return events()


SCOPE = {"type": "http", "asgi": {"spec_version": "2.3"}}


def test_a_client_that_goes_away_while_a_chunk_is_written_closes_the_generator(no_collector: None):
    closed: list[str] = []

    async def main() -> None:
        disconnected = asyncio.Event()
        sent: list[dict] = []

        async def receive() -> dict:
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if len(sent) == 3:
                # The client leaves while the server waits to write: cancellation arrives at this
                # await, with the generator paused at its ``yield``.
                disconnected.set()
                await asyncio.sleep(1)

        await EventStreamResponse(endless(closed), media_type="text/event-stream")(SCOPE, receive, send)
        assert closed == ["closed"]

    asyncio.run(main())


def test_a_write_that_fails_closes_the_generator(no_collector: None):
    closed: list[str] = []

    async def main() -> None:
        async def receive() -> dict:
            await asyncio.Event().wait()
            return {}

        sent = 0

        async def send(message: dict) -> None:
            nonlocal sent
            sent += 1
            if sent == 3:
                raise OSError("connection reset")

        with pytest.raises(ClientDisconnect):
            response = EventStreamResponse(endless(closed), media_type="text/event-stream")
            await response({"type": "http", "asgi": {"spec_version": "2.4"}}, receive, send)
        assert closed == ["closed"]

    asyncio.run(main())


def test_a_stream_that_ends_by_itself_is_closed_once(no_collector: None):
    closed: list[str] = []

    async def short() -> AsyncIterator[bytes]:
        try:
            yield b"data: 1\n\n"
        finally:
            closed.append("closed")

    async def main() -> None:
        async def receive() -> dict:
            await asyncio.Event().wait()
            return {}

        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        await EventStreamResponse(short(), media_type="text/event-stream")(SCOPE, receive, send)
        assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
        assert closed == ["closed"]

    asyncio.run(main())
