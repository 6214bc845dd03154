"""Where the trigger service reads the time: the system clock, or a file tests move forward."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FileClock:
    """The instant written in a file (ISO-8601 with an offset); it stands still until the file changes.

    Only for tests (``MILLRACE_TRIGGER_CLOCK_FILE``): they move time forward by rewriting the file,
    so a schedule's slots come due without waiting for them.
    """

    def __init__(self, path: Path) -> None:
        self._path = path

    def now(self) -> datetime:
        moment = datetime.fromisoformat(self._path.read_text().strip())
        if moment.tzinfo is None:
            raise ValueError(
                f"{self._path} must hold an instant with an offset, e.g. 2026-03-29T01:30:00+00:00"
            )
        return moment.astimezone(UTC)
