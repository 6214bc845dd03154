"""Handing freed memory back to the system.

A burst of work (thousands of runs in flight, large Kafka batches) grows a Python process's C heap;
once the burst is over, glibc keeps the freed pages mapped, so the process's resident size stays at
its high-water mark (measured after 10,000 record events: the orchestrator 142 MB, 13 MB of it free
heap pages; the trigger 7 MB of its 116). ``malloc_trim(0)`` releases every free page of the heap,
not only its top, and costs about a millisecond on a heap of this size; every process calls it
periodically (``MILLRACE_MEMORY_TRIM_SECONDS``). Where the C library is not glibc, nothing happens.
Python's own small-object arenas are not affected: they return to the system when wholly empty."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


def heap_trimmer() -> Callable[[], int] | None:
    """glibc's ``malloc_trim(0)`` as a function (1 when memory was released), or None elsewhere."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return lambda: int(trim(0))


def trimming_loop(every_seconds: float) -> Callable[[], Awaitable[None]] | None:
    """A background job that trims the heap every ``every_seconds``; None when it is off (0) or
    the C library has no ``malloc_trim``."""
    trim = heap_trimmer()
    if trim is None or every_seconds <= 0:
        return None

    async def trim_memory() -> None:
        while True:
            await asyncio.sleep(every_seconds)
            trim()

    return trim_memory
