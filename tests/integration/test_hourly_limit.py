"""The hourly limit has one judge, the orchestrator: the trigger service records every firing as
``started`` and asks for its run; the orchestrator starts at most ``max_executions_per_hour`` runs of a
workflow in an hour, whatever asked for them (record events, webhook calls, people), and the rest end
``throttled`` with the reason, listed with the workflow's runs."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from millrace_common.contracts.messages.records import RecordCreated

from tests.integration.test_triggers_fixtures import Rig, rig_for
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", name="limit_system")
def limit_system_fixture(infra: Infra, module_namespace: str) -> Iterator[System]:
    running = System(infra, module_namespace)
    try:
        running.start(("gateway", "trigger", "orchestrator"))
        yield running
    finally:
        running.stop_all()


@pytest.fixture(name="rig")
def rig_fixture(limit_system: System, tenant: str) -> Iterator[Rig]:
    yield from rig_for(limit_system, tenant)


def settled_runs(rig: Rig, workflow: str, count: int, timeout: float = 60) -> list[dict]:
    """The workflow's runs once ``count`` of them have ended (a run of trigger -> end completes at once)."""
    deadline = time.monotonic() + timeout
    while True:
        runs = rig.api.get("/api/v1/runs", params={"workflow_id": workflow, "limit": 100}).json()["items"]
        ended = [r for r in runs if r["status"] in ("completed", "throttled")]
        if len(ended) >= count:
            time.sleep(1.0)  # nothing more may follow
            runs = rig.api.get("/api/v1/runs", params={"workflow_id": workflow, "limit": 100}).json()["items"]
            assert len(runs) == count, runs
            return runs
        assert time.monotonic() < deadline, f"{len(ended)} of {count} runs ended: {runs}"
        time.sleep(0.2)


def throttled_count(rig: Rig) -> float:
    body = httpx.get(f"{rig.system.url('orchestrator')}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("millrace_runs_throttled_total{") and f'tenant="{rig.tenant}"' in line
    )


def test_record_events_beyond_the_hourly_limit_end_throttled_runs_with_the_reason(rig: Rig):
    workflow = rig.active_workflow({"kind": "record_created"}, max_per_hour=2)
    before = throttled_count(rig)
    rig.produce(
        *(
            RecordCreated(tenant_id=rig.tenant, pipeline_id="p", record_id="r", data={"i": i})
            for i in range(5)
        )
    )

    runs = settled_runs(rig, workflow, 5)
    assert sorted(r["status"] for r in runs) == [
        "completed",
        "completed",
        "throttled",
        "throttled",
        "throttled",
    ]
    throttled = [r for r in runs if r["status"] == "throttled"]
    assert all("max_executions_per_hour reached: 2 runs" in r["error"] for r in throttled)
    # Which two start is the orchestrator's order of the StartRuns, which are keyed by run (spread
    # over runs.commands' partitions), not the events' order: any two distinct events.
    started = [rig.api.get(f"/api/v1/runs/{r['run_id']}").json() for r in runs if r["status"] == "completed"]
    events = [r["trigger"]["data"]["record"]["data"]["i"] for r in started]
    assert len(set(events)) == 2 and set(events) <= set(range(5))
    # The trigger service asked for every run; it judges no limit of its own.
    firings = rig.firings(workflow)
    assert [f["status"] for f in firings] == ["started"] * 5
    assert {str(f["run_id"]) for f in firings} == {r["run_id"] for r in runs}
    assert throttled_count(rig) - before == 3


def test_webhook_calls_and_runs_started_by_hand_count_toward_the_same_limit(rig: Rig):
    workflow = rig.active_workflow({"kind": "webhook"}, max_per_hour=2)
    hook = rig.api.get(f"/api/v1/workflows/{workflow}/webhook").json()["url"].rsplit("/", 1)[1]
    url = f"{rig.system.url('gateway')}/hooks/{hook}"
    answers = [httpx.post(url, json={"n": n}, headers={"x-millrace-delivery": f"n{n}"}) for n in range(2)]
    assert [a.status_code for a in answers] == [202, 202]
    settled_runs(rig, workflow, 2)
    by_hand = rig.api.post(f"/api/v1/workflows/{workflow}/runs", json={"input": {}})
    assert by_hand.status_code == 202, by_hand.text

    runs = settled_runs(rig, workflow, 3)
    [late] = [r for r in runs if r["run_id"] == by_hand.json()["run_id"]]
    assert late["status"] == "throttled"
    assert "max_executions_per_hour reached: 2 runs" in late["error"]
    assert sorted(r["status"] for r in runs) == ["completed", "completed", "throttled"]
    assert {a.json()["run_id"] for a in answers} | {late["run_id"]} == {r["run_id"] for r in runs}
