"""A real, fixable reason for a message to be dead-lettered, for the dead-letter tests. The trigger
service runs as a database role of its own with the privileges it needs (least privilege, as an
installation that gives each service its own role does), and that role loses its INSERT privilege on
``trigger_firings`` (as after a restore or a grant script that left a table out). PostgreSQL then
refuses every firing, which is not an outage, so the trigger's poison guard sets the record event
aside after 3 attempts; granting the privilege back fixes it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from sqlalchemy import create_engine, make_url, text

from tests.support.infra import Infra
from tests.support.processes import SERVICES, System


@contextmanager
def service_role(infra: Infra, namespace: str) -> Iterator[str]:
    """A login role that may read and write the namespace's tables (and nothing else); yields the
    database URL that connects as it. Dropped afterwards."""
    role = f"{namespace}_trigger"
    _execute(
        infra,
        f"create role {role} login",
        f'grant usage on schema "{namespace}" to {role}',
        f'grant select, insert, update, delete on all tables in schema "{namespace}" to {role}',
        f'grant usage, select on all sequences in schema "{namespace}" to {role}',
    )
    try:
        yield make_url(infra.database_url).set(username=role).render_as_string(hide_password=False)
    finally:
        _execute(infra, f"drop owned by {role}", f"drop role if exists {role}")


@contextmanager
def system_with_trigger_role(infra: Infra, namespace: str) -> Iterator[System]:
    """Every service as a process, the trigger connecting as a role of its own (:func:`service_role`)."""
    system = System(infra, namespace)
    with service_role(infra, namespace) as trigger_database:
        try:
            system.start(tuple(name for name in SERVICES if name != "trigger"))
            system.start(("trigger",), extra_env={"MILLRACE_DATABASE_URL": trigger_database})
            yield system
        finally:
            system.stop_all()


def revoke_firings(infra: Infra, namespace: str) -> None:
    _execute(infra, f'revoke insert on table "{namespace}".trigger_firings from {namespace}_trigger')


def grant_firings(infra: Infra, namespace: str) -> None:
    _execute(infra, f'grant insert on table "{namespace}".trigger_firings to {namespace}_trigger')


def _execute(infra: Infra, *statements: str) -> None:
    engine = create_engine(infra.database_url)
    try:
        with engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement))
    finally:
        engine.dispose()


def record_workflow(api: httpx.Client, pipeline: str) -> str:
    """An active workflow that runs when a record of ``pipeline`` is created, and simply ends."""
    assert api.post("/api/v1/pipelines", json={"id": pipeline, "name": pipeline.title()}).status_code == 201
    definition = {
        "nodes": [
            {
                "id": "created",
                "type": "trigger",
                "data": {"name": "Order created", "kind": "record_created", "pipeline_ids": [pipeline]},
            },
            {
                "id": "done",
                "type": "end",
                "data": {"name": "Done", "output": {"id": "{{ trigger.record.id }}"}},
            },
        ],
        "edges": [{"id": "e1", "source": "created", "target": "done"}],
    }
    created = api.post("/api/v1/workflows", json={"name": f"On {pipeline}", "definition": definition})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    assert api.post(f"/api/v1/workflows/{workflow_id}/activate", json={}).status_code == 200
    return workflow_id


def wait_for_dead_letter(api: httpx.Client, timeout: float = 60, **params: object) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = api.get("/api/v1/dead-letters", params=params).json()["items"]
        if found:
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"no dead letter for {params} within {timeout} s")


def dead_letters_by_record(api: httpx.Client, count: int, timeout: float = 60) -> dict[str, int]:
    """The ids of the first ``count`` dead letters listed, by the record id their message names."""
    found: dict[str, int] = {}
    deadline = time.monotonic() + timeout
    while len(found) < count:
        assert time.monotonic() < deadline, f"{len(found)} dead letters of records within {timeout} s"
        for item in api.get("/api/v1/dead-letters").json()["items"]:
            if item["id"] not in found.values():
                found[api.get(f"/api/v1/dead-letters/{item['id']}").json()["value"]["record_id"]] = item["id"]
        time.sleep(0.3)
    return found


def runs_of(api: httpx.Client, workflow_id: str) -> list[dict]:
    return api.get("/api/v1/runs", params={"workflow_id": workflow_id}).json()["items"]


def wait_for_completed_run(api: httpx.Client, workflow_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = runs_of(api, workflow_id)
        if found and found[0]["status"] == "completed":
            return found[0]
        time.sleep(0.3)
    raise AssertionError(f"no completed run of {workflow_id} within {timeout} s: {runs_of(api, workflow_id)}")
