"""The orchestrator's timer loop against the real PostgreSQL: it sleeps until the earliest timer is
due, so a timer fires at its time (not up to a polling interval late) and never before it; a timer
this process writes that is due sooner than the loop's sleep wakes it; one written by another
instance (the loop not told) fires at most ``max_sleep_seconds`` late. A fired timer is a FireTimer
row in the outbox (the relay is not running here, so the rows stay)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta

import pytest
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.run_events import TimerScheduled
from millrace_common.contracts.topics import Namespace
from millrace_common.platform.db import create_engine
from millrace_common.platform.live_relay import LiveRelay
from millrace_common.platform.pg import DirectConnections
from millrace_common.platform.settings import ServiceSettings
from millrace_common.platform.tables import outbox, timers
from millrace_orchestrator.entrypoints.clock import TimerLoop
from sqlalchemy import insert, select

from tests.support.infra import Infra

pytestmark = pytest.mark.integration

MAX_SLEEP = 3.0


def test_timers_fire_at_their_time_woken_by_this_process_or_within_the_sleep_bound(
    infra: Infra, namespace: str
):
    settings = ServiceSettings(
        service_name="timers",
        namespace=namespace,
        kafka_bootstrap=infra.kafka_bootstrap,
        database_url=infra.database_url,
    )

    async def scenario() -> dict[str, tuple[datetime, float]]:
        engine = create_engine(settings)
        direct = DirectConnections(settings, size=1)
        relay = LiveRelay(settings, direct, "orchestrator")  # not running: rows stay in the outbox
        loop = TimerLoop(engine, direct, Namespace(namespace), relay, utc_now, max_sleep_seconds=MAX_SLEEP)
        run_id = uuid.uuid4()

        async def write(fire_at: datetime, *, tell: bool) -> uuid.UUID:
            timer_id = uuid.uuid4()
            async with engine.begin() as connection:
                await connection.execute(
                    insert(timers),
                    [
                        {
                            "timer_id": timer_id,
                            "run_id": run_id,
                            "tenant_id": "acme",
                            "purpose": "delay",
                            "fire_at": fire_at,
                        }
                    ],
                )
            if tell:
                loop.scheduled(
                    [
                        TimerScheduled(
                            tenant_id="acme",
                            correlation_id=run_id,
                            run_id=run_id,
                            seq=1,
                            timer_id=timer_id,
                            fire_at=fire_at,
                            purpose="delay",
                        )
                    ]
                )
            return timer_id

        async def fired_at(timer_id: uuid.UUID, limit: float) -> datetime:
            deadline = time.monotonic() + limit
            while time.monotonic() < deadline:
                async with engine.connect() as connection:
                    values = (await connection.execute(select(outbox.c.value))).scalars().all()
                if any(json.loads(bytes(v))["timer_id"] == str(timer_id) for v in values):
                    return utc_now()
                await asyncio.sleep(0.01)
            raise AssertionError(f"timer {timer_id} did not fire within {limit} s")

        running = asyncio.create_task(loop.run())
        try:
            await asyncio.sleep(0.3)  # the loop is asleep on an empty table, for up to MAX_SLEEP
            found: dict[str, tuple[datetime, float]] = {}
            for name, tell in (("told", True), ("another instance's", False)):
                fire_at = utc_now() + timedelta(seconds=0.5)
                timer_id = await write(fire_at, tell=tell)
                fired = await fired_at(timer_id, MAX_SLEEP + 5)
                found[name] = (fire_at, (fired - fire_at).total_seconds())
                # Never before its time: the outbox row's timestamp is after fire_at.
                async with engine.connect() as connection:
                    created = (
                        (await connection.execute(select(outbox.c.created_at).order_by(outbox.c.id.desc())))
                        .scalars()
                        .first()
                    )
                assert created >= fire_at, (name, created, fire_at)
            return found
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await engine.dispose()
            await direct.close()

    found = asyncio.run(scenario())
    # Seen fired (polling the outbox every 10 ms) this long after its time.
    told = found["told"][1]
    assert 0 <= told < 0.5, f"a timer this process wrote was seen fired {told:.2f} s after its time"
    other = found["another instance's"][1]
    assert 0 <= other < MAX_SLEEP, f"another instance's timer was seen fired {other:.2f} s after its time"
