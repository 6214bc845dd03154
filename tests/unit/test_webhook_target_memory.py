"""The webhook addresses' memory (``adapters/webhook_targets.py``): an address read within
``fresh_seconds`` is answered without a read, ``forget`` makes the next call read, a read that was in
flight during a ``forget`` is not kept, and the memory stays bounded. The reads are counted by a
stand-in for the database read; the read itself is exercised by the webhook integration tests."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from millrace_gateway.adapters import webhook_targets
from millrace_gateway.adapters.webhook_targets import TargetRow, WebhookTargets

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counted(WebhookTargets):
    """Reads answered from a dict, each counted; ``hold`` keeps a read waiting until released."""

    def __init__(self, rows: dict[str, TargetRow], clock: Clock, fresh_seconds: float) -> None:
        super().__init__(None, fresh_seconds=fresh_seconds, clock=clock)  # type: ignore[arg-type]
        self.rows = rows
        self.reads: list[str] = []
        self.hold: asyncio.Event | None = None

    async def _read(self, token: str) -> TargetRow | None:
        self.reads.append(token)
        if self.hold is not None:
            await self.hold.wait()
        return self.rows.get(token)


def row(status: str = "active") -> TargetRow:
    return TargetRow(uuid4(), "acme", status, 1, "webhook", None)


async def test_an_address_is_read_once_while_fresh_and_again_after() -> None:
    clock = Clock()
    targets = Counted({"tok": row()}, clock, fresh_seconds=1.0)
    first = await targets.by_token("tok")
    clock.now += 0.99
    assert await targets.by_token("tok") is first
    assert targets.reads == ["tok"]
    clock.now += 0.02
    targets.rows["tok"] = row("paused")
    assert (await targets.by_token("tok")).status == "paused"
    assert targets.reads == ["tok", "tok"]


async def test_an_unknown_address_is_remembered_as_unknown() -> None:
    targets = Counted({}, Clock(), fresh_seconds=1.0)
    assert await targets.by_token("nope") is None
    assert await targets.by_token("nope") is None
    assert targets.reads == ["nope"]


async def test_forget_makes_the_next_call_read() -> None:
    targets = Counted({"tok": row()}, Clock(), fresh_seconds=60.0)
    await targets.by_token("tok")
    targets.rows["tok"] = row("paused")
    targets.forget()
    assert (await targets.by_token("tok")).status == "paused"
    assert targets.reads == ["tok", "tok"]


async def test_a_read_in_flight_during_forget_is_not_kept() -> None:
    targets = Counted({"tok": row()}, Clock(), fresh_seconds=60.0)
    targets.hold = asyncio.Event()
    reading = asyncio.create_task(targets.by_token("tok"))
    await asyncio.sleep(0)
    targets.forget()  # the workflow changed while the read was on its way
    targets.hold.set()
    assert (await reading).status == "active"  # that call gets what it read ...
    targets.hold = None
    targets.rows["tok"] = row("paused")
    assert (await targets.by_token("tok")).status == "paused"  # ... but the next one reads again
    assert targets.reads == ["tok", "tok"]


async def test_zero_seconds_reads_every_call() -> None:
    targets = Counted({"tok": row()}, Clock(), fresh_seconds=0)
    for _ in range(3):
        await targets.by_token("tok")
    assert targets.reads == ["tok"] * 3


async def test_the_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook_targets, "KNOWN_TARGETS_MAX", 8)
    targets = Counted({}, Clock(), fresh_seconds=60.0)
    for n in range(50):
        await targets.by_token(f"made-up-{n}")
        assert len(targets._known) <= 8
