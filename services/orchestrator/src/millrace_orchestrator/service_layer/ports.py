"""What the shell needs from the world, as ports: the run log (PostgreSQL in production, a dict in
the unit tests) and the relay that publishes what a commit wrote to the outbox."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from millrace_common.platform.outbox import Record

from millrace_orchestrator.domain.batch import BatchDecision, LoadedBatch
from millrace_orchestrator.domain.decide import Message


class WriteConflict(Exception):
    """Nothing of a decision was written: one of its messages was handled meanwhile, a run's log had
    moved on, or (for a decision on assumed states and load) a workflow had no room for its runs."""


@dataclass(frozen=True)
class Committed:
    """The outbox rows a commit wrote (their ids) and their messages, for the relay."""

    outbox_ids: Sequence[int] = ()
    messages: Sequence[Record] = ()


class RunLog(Protocol):
    async def load(self, messages: Sequence[Message], *, now: datetime, read: bool = False) -> LoadedBatch:
        """The states ``messages`` are decided on. Without ``read``, remembered states and an
        assumed load (``LoadedBatch.assumed``) when every run is remembered or new; otherwise
        read: which messages were handled before, each run's log, each starting workflow's load."""
        ...

    async def commit(self, decision: BatchDecision, *, now: datetime) -> Committed:
        """Write the decision's claims, events, projections and outbox rows at once, checking its
        assumptions; remember the runs' states. Raises :class:`WriteConflict`, with nothing written."""
        ...


class Relay(Protocol):
    async def hand_over(self, ids: Sequence[int], messages: Sequence[Record]) -> None:
        """Publish rows just committed (and delete them once published)."""
        ...
