"""Which offset of a partition may be committed while its messages finish out of order. Pure.

Commands of one partition start in offset order but finish in any order (a slow call does not hold
up the ones behind it). The committed position is the oldest offset still running, or one past the
newest started when none runs, so a commit never passes a message whose result is not published.
"""

from __future__ import annotations


class PartitionProgress:
    def __init__(self) -> None:
        self._running: set[int] = set()
        self._newest_started: int | None = None
        self._committed: int | None = None

    def started(self, offset: int) -> None:
        if self._newest_started is not None and offset <= self._newest_started:
            raise ValueError(
                f"offset {offset} started after {self._newest_started}; a partition starts in order"
            )
        self._running.add(offset)
        self._newest_started = offset

    def finished(self, offset: int) -> None:
        self._running.discard(offset)

    @property
    def running(self) -> int:
        return len(self._running)

    def position(self) -> int | None:
        """The offset to commit (the next one to read), or None when nothing has started."""
        if self._running:
            return min(self._running)
        return None if self._newest_started is None else self._newest_started + 1

    def to_commit(self) -> int | None:
        """The position, when it moved past what was last committed."""
        position = self.position()
        if position is None or (self._committed is not None and position <= self._committed):
            return None
        return position

    def committed(self, position: int) -> None:
        self._committed = position if self._committed is None else max(self._committed, position)
