"""Hearing SIGTERM and SIGINT before the HTTP server's graceful shutdown waits on open connections."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType


def on_stop_signal(action: Callable[[], None]) -> Callable[[], object]:
    """A background job that, once started, runs ``action`` on the event loop when the process is asked
    to stop, then lets the handler that was installed before (the server's) do its part.

    Long-lived responses such as event streams never finish by themselves, and the server's shutdown
    waits for open responses before anything else stops; ``action`` is where they are told to end."""

    async def listen() -> None:
        # Signal handlers can only be installed from the main thread (a test client runs apps elsewhere).
        if threading.current_thread() is threading.main_thread():
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                _chain(signum, loop, action)
        await asyncio.Event().wait()

    listen.__name__ = "on_stop_signal"
    return listen


def _chain(signum: signal.Signals, loop: asyncio.AbstractEventLoop, action: Callable[[], None]) -> None:
    previous = signal.getsignal(signum)

    def handle(received: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(action)
        if callable(previous):
            previous(received, frame)
        else:
            signal.signal(received, previous)
            signal.raise_signal(received)

    signal.signal(signum, handle)
