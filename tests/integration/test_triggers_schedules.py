"""Scheduled triggers on a clock the test moves (``MILLRACE_TRIGGER_CLOCK_FILE``): each slot fires once
across restarts of the trigger service and with two instances running; missed slots follow the policy."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.integration.test_triggers_fixtures import Rig, rig_for, write_clock
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.integration

HOURLY_IN_PARIS = {"kind": "scheduled", "cron": "0 * * * *", "timezone": "Europe/Paris"}


@pytest.fixture
def clock(tmp_path: Path) -> Path:
    path = tmp_path / "clock"
    write_clock(path, datetime.now(UTC))
    return path


@pytest.fixture(scope="module")
def gateway(infra: Infra, module_namespace: str) -> Iterator[System]:
    """The gateway, once for the module; each test runs its own trigger service on its own clock."""
    running = System(infra, module_namespace)
    try:
        running.start(("gateway",))
        yield running
    finally:
        running.stop_all()


@pytest.fixture
def scheduling(gateway: System, clock: Path) -> Iterator[tuple[Rig, dict[str, str], System]]:
    triggers = System(gateway.infra, gateway.namespace)
    triggers.services["gateway"] = gateway.services["gateway"]
    env = {"MILLRACE_TRIGGER_CLOCK_FILE": str(clock), "MILLRACE_TRIGGER_SCHEDULE_TICK_SECONDS": "0.1"}
    try:
        triggers.start(("trigger",), extra_env=env)
        yield from ((r, env, triggers) for r in rig_for(triggers, f"scheduler-{uuid.uuid4().hex[:8]}"))
    finally:
        triggers.services.pop("gateway")
        triggers.stop_all()


def wait_for_cursor(rig: Rig, workflow_id: str, timeout: float = 15) -> None:
    """Until the scheduler has looked at the workflow's schedule since it was activated."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if rig.sql("select 1 from schedule_cursors where workflow_id = cast(:w as uuid)", w=workflow_id):
            return
        time.sleep(0.1)
    raise AssertionError("the scheduler never picked the schedule up")


def slots_of(rig: Rig, workflow_id: str) -> list[str]:
    return sorted(run.trigger.data["schedule"]["slot"] for run in rig.start_runs(workflow_id))


def settle_schedules(seconds: float = 1.5) -> None:
    """Let the scheduler (ticking every 0.1 s) look again; asserting 'no more runs' needs a few ticks."""
    time.sleep(seconds)


def restart_trigger(system: System, env: dict[str, str]) -> None:
    assert system.stop("trigger") == 0
    system.start(("trigger",), extra_env=env)


def test_each_slot_fires_once_across_restarts_and_instances(
    scheduling: tuple[Rig, dict[str, str], System], clock: Path
):
    rig, env, system = scheduling
    base = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    workflow = rig.active_workflow(HOURLY_IN_PARIS)
    wait_for_cursor(rig, workflow)

    write_clock(clock, base + timedelta(seconds=5))
    rig.wait_for_runs(workflow, 1, timeout=15)
    [run] = rig.start_runs(workflow)
    assert run.trigger.kind == "scheduled"
    assert run.trigger.data["schedule"]["slot"] == base.isoformat()
    assert run.trigger.data["schedule"]["slot_local"] == base.astimezone(ZoneInfo("Europe/Paris")).isoformat()
    assert run.trigger.data["schedule"]["late"] is False
    assert run.idempotency_key == f"schedule:{workflow}:{base.isoformat()}"

    # A restart, even one that lost the schedule's cursor, does not fire the slot again: the slot
    # is claimed by its idempotency key.
    restart_trigger(system, env)
    rig.sql(
        "delete from schedule_cursors where workflow_id = cast(:w as uuid) returning workflow_id", w=workflow
    )
    write_clock(clock, base + timedelta(seconds=20))
    wait_for_cursor(rig, workflow)
    settle_schedules()
    assert slots_of(rig, workflow) == [base.isoformat()]

    # Two instances at once: the next slot still fires once.
    second = System(system.infra, system.namespace)
    try:
        second.start(("trigger",), extra_env=env)
        write_clock(clock, base + timedelta(hours=1, seconds=2))
        rig.wait_for_runs(workflow, 2, timeout=15)
        settle_schedules()
        assert slots_of(rig, workflow) == [base.isoformat(), (base + timedelta(hours=1)).isoformat()]
    finally:
        assert second.stop_all() == {"trigger": 0}
    assert [f["status"] for f in rig.firings(workflow)] == ["started", "started"]


def test_slots_missed_while_the_service_was_down_follow_the_missed_slot_policy(
    scheduling: tuple[Rig, dict[str, str], System], clock: Path
):
    rig, env, system = scheduling
    base = (datetime.now(UTC) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    catch_up = rig.active_workflow(HOURLY_IN_PARIS)  # fire_once is the default
    skipping = rig.active_workflow({**HOURLY_IN_PARIS, "missed_slot_policy": "skip"})
    wait_for_cursor(rig, catch_up)
    wait_for_cursor(rig, skipping)

    assert system.stop("trigger") == 0
    write_clock(clock, base + timedelta(hours=2, minutes=30))  # slots base, +1h and +2h pass unseen
    system.start(("trigger",), extra_env=env)

    [late] = rig.wait_for_runs(catch_up, 1, timeout=15)
    assert late.trigger.data["schedule"]["slot"] == (base + timedelta(hours=2)).isoformat()
    assert late.trigger.data["schedule"]["late"] is True
    assert late.trigger.data["schedule"]["missed_slots"] == 3
    settle_schedules()
    assert rig.start_runs(skipping) == []
    [missed] = rig.firings(skipping)
    assert missed["status"] == "missed"
    assert "3 slot(s) were missed and the missed-slot policy is skip" in missed["reason"]

    # Back on time, both fire their next slot normally.
    write_clock(clock, base + timedelta(hours=3, seconds=1))
    rig.wait_for_runs(skipping, 1, timeout=15)
    assert len(rig.wait_for_runs(catch_up, 2, timeout=15)) == 2

    # Paused, a schedule fires no more.
    assert rig.api.post(f"/api/v1/workflows/{catch_up}/pause").status_code == 200
    write_clock(clock, base + timedelta(hours=4, seconds=1))
    rig.wait_for_runs(skipping, 2, timeout=15)
    settle_schedules()
    assert len(rig.start_runs(catch_up)) == 2


def test_named_schedules_fire_on_their_own_and_the_api_shows_where_each_stands(
    scheduling: tuple[Rig, dict[str, str], System], clock: Path
):
    rig, _, _ = scheduling
    now = datetime.now(UTC)
    first = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) + timedelta(minutes=15)
    workflow = rig.active_workflow(
        {
            "kind": "scheduled",
            "schedules": [
                {"name": "quarter-cron", "cron": "*/15 * * * *", "timezone": "Europe/Paris"},
                {"name": "quarter", "every": 15, "unit": "minutes"},
            ],
        }
    )
    wait_for_cursor(rig, workflow)
    before = rig.api.get(f"/api/v1/workflows/{workflow}").json()["schedules"]
    assert [(s["name"], s["kind"], s["run_count"], s["last_slot_at"]) for s in before] == [
        ("quarter-cron", "cron", 0, None),
        ("quarter", "interval", 0, None),
    ]
    assert [datetime.fromisoformat(s["next_slot_at"]) for s in before] == [first, first]

    # One instant is a slot of both: each fires its own run, under its own key.
    write_clock(clock, first + timedelta(seconds=5))
    rig.wait_for_runs(workflow, 2, timeout=15)
    write_clock(clock, first + timedelta(minutes=15, seconds=5))
    runs = rig.wait_for_runs(workflow, 4, timeout=15)
    fired = sorted((r.trigger.data["schedule"]["name"], r.trigger.data["schedule"]["slot"]) for r in runs)
    second = first + timedelta(minutes=15)
    assert fired == [
        ("quarter", first.isoformat()),
        ("quarter", second.isoformat()),
        ("quarter-cron", first.isoformat()),
        ("quarter-cron", second.isoformat()),
    ]
    assert len({r.run_id for r in runs}) == 4

    shown = {s["name"]: s for s in rig.api.get(f"/api/v1/workflows/{workflow}").json()["schedules"]}
    assert shown["quarter-cron"]["run_count"] == 2
    assert datetime.fromisoformat(shown["quarter-cron"]["last_slot_at"]) == second
    assert datetime.fromisoformat(shown["quarter-cron"]["next_slot_at"]) == second + timedelta(minutes=15)
    assert shown["quarter"] | {"last_slot_at": None, "next_slot_at": None} == {
        "name": "quarter",
        "kind": "interval",
        "cron": None,
        "every": 15,
        "unit": "minutes",
        "timezone": "UTC",
        "missed_slot_policy": "fire_once",
        "last_slot_at": None,
        "next_slot_at": None,
        "run_count": 2,
    }
    assert datetime.fromisoformat(shown["quarter"]["next_slot_at"]) == second + timedelta(minutes=15)

    # Paused, a workflow has no next slot; what its schedules did stays.
    assert rig.api.post(f"/api/v1/workflows/{workflow}/pause").status_code == 200
    paused = rig.api.get(f"/api/v1/workflows/{workflow}").json()["schedules"]
    assert [(s["run_count"], s["next_slot_at"]) for s in paused] == [(2, None), (2, None)]
