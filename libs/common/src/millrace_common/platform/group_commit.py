"""Group commit: concurrent callers that each need a small write made durable share one statement.

Each caller submits its item and waits for its own result. One task writes: it takes everything
submitted so far (at most ``max_batch``), writes it with one call of ``write`` (one statement, one
commit, one fsync) and answers each caller. Items that arrive while a write is in flight wait for the
next one, so the batch grows with the load by itself: one caller alone is written at once, with no
wait added, and sixteen callers share a commit instead of queueing for sixteen. A caller is answered
only after its write returned, so an answer still means "durable".

A failed write fails every caller of its batch with the same error (nothing of the batch was written:
the write is one statement); the next batch is tried afresh. A caller that gives up (its task is
cancelled) does not undo an item that is already being written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(
        self, write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]], *, max_batch: int = 256
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None
        self.batches = 0
        """How many writes were made (the ratio to items is the sharing)."""

    async def submit(self, item: Item) -> Result:
        """``item`` written (with whoever else is waiting), and its result."""
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="group-commit")
        return await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self._max_batch], self._waiting[self._max_batch :]
            self.batches += 1
            try:
                results = await self._write([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results of a group write of {len(batch)} items")
            except BaseException as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                if isinstance(error, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        """Wait for the write in flight and those queued behind it."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
