"""Live run events as the API streams them: one event, how it reads as a Server-Sent Events message, and
which events end a run. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from millrace_common.contracts.messages.run_events import RUN_ENDED_STATUSES, RUN_ENDED_TYPES

TERMINAL_TYPES = RUN_ENDED_TYPES
"""Event types after which a run emits nothing more unless someone retries it."""
TERMINAL_STATUSES = frozenset(status.value for status in RUN_ENDED_STATUSES)
"""The run statuses those events leave a run in."""


@dataclass(frozen=True)
class LiveEvent:
    """One run event: where it sits in its run's log, and its JSON exactly as it was published."""

    tenant_id: str
    run_id: UUID
    seq: int
    type: str
    data: bytes

    @property
    def ends_run(self) -> bool:
        return self.type in TERMINAL_TYPES


def sse_message(event_id: str, event: LiveEvent) -> bytes:
    # A line break inside data would end the field early; SSE joins repeated data fields with one.
    data = b"".join(b"data: %s\n" % line for line in event.data.replace(b"\r\n", b"\n").split(b"\n"))
    return b"id: %s\nevent: %s\n%s\n" % (event_id.encode(), event.type.encode(), data)


def sse_comment(text: str) -> bytes:
    return b": %s\n\n" % text.encode()
