"""The short fault drill (tests/support/drills.py): under a steady load of webhook calls and records
(for_each runs with HTTP calls and a record update), kill -9 each of the five services in turn, then
restart the Kafka broker and PostgreSQL. Afterwards every accepted call is exactly one completed run,
every record was updated once, every HTTP call was a first attempt, and the API answered 2xx or 503,
never another 5xx and never slowly. The long drill (45 s outages) is bench/fault_drills.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.drills import Drill
from tests.support.network import LoopbackServer, loopback_server
from tests.support.processes import System

pytestmark = pytest.mark.e2e


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with loopback_server() as running:
        yield running


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
