"""The short fault drill (tests/support/drills.py): under a steady load of webhook calls and records
(for_each runs with HTTP calls and a record update), kill -9 each of the five services in turn, then
restart the Kafka broker and PostgreSQL. Afterwards every accepted call is exactly one completed run,
every record was updated once, every HTTP call was a first attempt, and the API answered 2xx or 503,
never another 5xx and never slowly. The long drill (45 s outages) is bench/fault_drills.py."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.support.drills import Drill
from tests.support.network import LoopbackServer
from tests.support.processes import System

pytestmark = pytest.mark.e2e


@pytest.mark.timeout(420)
def test_every_accepted_call_runs_once_through_kills_and_restarts_of_everything(
    system: System, server: LoopbackServer
) -> None:
    system.start()
    drill = Drill(system, server, rate_per_second=8, hold_seconds=3, settle_seconds=3)
    try:
        with drill.load():
            drill.run_all_faults()
        report = drill.audit(drain_seconds=120)
    finally:
        drill.close()
    for line in report.lines():
        print(line)
    accepted = sum(1 for call in report.calls if call.ident)
    assert accepted >= 100, f"too little load to prove anything: {accepted} accepted calls"
    assert report.kills == 7
    assert not report.problems, "\n".join(report.problems)
    assert (report.lost, report.duplicated) == (0, 0)
    assert all(f.recovered_after is not None for f in report.faults), report.lines()


@pytest.mark.timeout(240)
def test_while_kafka_is_down_webhooks_are_accepted_at_once_and_run_when_it_is_back(
    system: System, server: LoopbackServer
) -> None:
    # Before, a webhook waited for Kafka inside its database transaction: twenty such calls took
    # the gateway's whole pool, and every database-backed endpoint then failed after 30 s.
    system.start()
    drill = Drill(system, server)
    hook = system.url("gateway") + drill.hook_path
    logs = {name: service.log_path for name, service in system.services.items()}
    try:
        lines_before = {name: len(path.read_bytes().splitlines()) for name, path in logs.items()}
        drill.broker.kill_kafka()
        began = time.monotonic()

        def call(n: int) -> tuple[int, float, str | None]:
            sent = time.monotonic()
            answer = httpx.post(
                hook, json={"n": f"k{n}"}, headers={"x-millrace-delivery": f"k{n}"}, timeout=30
            )
            run_id = answer.json().get("run_id") if answer.status_code == 202 else None
            return answer.status_code, time.monotonic() - sent, run_id

        with ThreadPoolExecutor(25) as pool:
            answers = list(pool.map(call, range(25)))
        listing = drill.api.get("/api/v1/workflows")
        down_for = time.monotonic() - began
        assert [status for status, _, _ in answers] == [202] * 25, answers
        assert max(took for _, took, _ in answers) < 5, answers
        assert listing.status_code == 200 and down_for < 15
        time.sleep(max(0.0, 12 - down_for))  # a dozen seconds of outage for the logs to show
        outage = time.monotonic() - began
        for name, path in logs.items():
            # Said once per 30 s per kind of warning, not 80-110 lines a second as before.
            written = len(path.read_bytes().splitlines()) - lines_before[name]
            assert written < 60, f"{name} wrote {written} log lines in {outage:.0f} s of Kafka outage"
        drill.broker.start_kafka()
        ready_since = None
        flapped = []
        watch_until = time.monotonic() + 20
        while time.monotonic() < watch_until:  # once ready again, readiness stays so
            ready = httpx.get(system.url("gateway") + "/readyz", timeout=5).status_code == 200
            if ready and ready_since is None:
                ready_since = time.monotonic()
            elif not ready and ready_since is not None:
                flapped.append(time.monotonic() - ready_since)
            time.sleep(0.25)
        assert ready_since is not None and not flapped, f"readiness flapped after Kafka came back: {flapped}"
        run_ids = {run_id for _, _, run_id in answers}
        deadline = time.monotonic() + 90
        while True:
            statuses = [drill.api.get(f"/api/v1/runs/{run_id}") for run_id in run_ids]
            done = [a for a in statuses if a.status_code == 200 and a.json()["status"] == "completed"]
            if len(done) == len(run_ids):
                break
            assert time.monotonic() < deadline, (
                f"{len(done)} of {len(run_ids)} runs completed after Kafka came back"
            )
            time.sleep(1)
        assert len(server.requests_to("/hook")) == 25
    finally:
        drill.close()
