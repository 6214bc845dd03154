"""The acceptance of dead letters, every service a real process on real Kafka and PostgreSQL: a record
event the trigger cannot process (its database role lost the INSERT privilege on ``trigger_firings``:
a real PostgreSQL refusal, not an injected fault) lands on ``records.events.dlq``, appears in the API
and in ``millrace-admin dlq``, is replayed once after the privilege is granted back, and its run
completes; a second replay, through the API or the command line, is refused and starts nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api import provision_tenant, signed_in
from tests.support.dead_letters import (
    grant_firings,
    record_workflow,
    revoke_firings,
    runs_of,
    system_with_trigger_role,
    wait_for_completed_run,
    wait_for_dead_letter,
)
from tests.support.infra import Infra
from tests.support.processes import System

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(infra: Infra, namespace: str) -> Iterator[System]:
    """Every service, the trigger connecting as a role of its own."""
    with system_with_trigger_role(infra, namespace) as system:
        yield system


def admin_cli(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **system.infra.env(system.namespace)}
    executable = Path(sys.executable).parent / "millrace-admin"
    return subprocess.run(
        [str(executable), "dlq", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_a_record_event_the_trigger_could_not_process_is_replayed_once_after_the_fix_and_runs(
    running: System,
):
    system = running
    tenant = f"shop{uuid.uuid4().hex[:8]}"
    api = signed_in(system.url("gateway"), provision_tenant(system.infra, system.namespace, tenant))
    workflow_id = record_workflow(api, "orders")

    revoke_firings(system.infra, system.namespace)
    try:
        created = api.post("/api/v1/pipelines/orders/records", json={"data": {"total": 42}})
        assert created.status_code == 201, created.text
        record_id = created.json()["id"]
        letter = wait_for_dead_letter(api, topic="records.events", state="pending")
    finally:
        grant_firings(system.infra, system.namespace)

    assert letter["tenant_id"] == tenant and letter["cause"] == "failed"
    assert "permission denied for table trigger_firings" in letter["reason"]
    assert letter["attempts"] == 3 and letter["consumer_group"].endswith("trigger")
    assert runs_of(api, workflow_id) == []
    shown = api.get(f"/api/v1/dead-letters/{letter['id']}").json()
    assert shown["value_kind"] == "json"
    assert shown["value"]["type"] == "record.created" and shown["value"]["record_id"] == record_id

    listed = admin_cli(system, "list", "--tenant", tenant, "--topic", "records.events", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["id"] == letter["id"] and row["state"] == "pending"
    assert "permission denied" in admin_cli(system, "list", "--reason", "PERMISSION DENIED").stdout
    show = admin_cli(system, "show", str(letter["id"]))
    assert json.loads(show.stdout)["value"]["record_id"] == record_id

    replayed = api.post(f"/api/v1/dead-letters/{letter['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    assert replayed.json()["state"] == "replayed"
    run = wait_for_completed_run(api, workflow_id)
    assert api.get(f"/api/v1/runs/{run['run_id']}").json()["trigger"]["data"]["record"]["id"] == record_id

    again = api.post(f"/api/v1/dead-letters/{letter['id']}/replay")
    assert again.status_code == 409 and again.json()["code"] == "already_replayed"
    cli_again = admin_cli(system, "replay", str(letter["id"]))
    assert cli_again.returncode == 1 and "replayed already" in cli_again.stderr
    time.sleep(3)  # what a second replay would have started has had time to show
    assert [r["run_id"] for r in runs_of(api, workflow_id)] == [run["run_id"]]
    assert api.get("/api/v1/dead-letters", params={"state": "pending"}).json()["items"] == []
