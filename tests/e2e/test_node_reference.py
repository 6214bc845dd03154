"""docs/node-reference.md against real runs: every service a real process on real Kafka and PostgreSQL.

Each trigger kind (manual, webhook, the four record kinds, scheduled) starts a workflow whose ``set``
node reads every path the reference documents for that kind, so a documented path a real run does not
have fails the node with a ``template`` error. A manual run through a chain of most node types checks
each node's real output against the documented fields (``set`` flat), and a run of failing nodes
checks their error types against the documented list (a template, a condition and a for_each item).

Everything is started together by one module fixture and waited for together, which keeps the module
to the services' start-up and a few seconds of runs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import httpx
import pytest

from tests.integration.test_triggers_fixtures import write_clock
from tests.support.api import provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.network import Answer, LoopbackServer, grant_loopback, loopback_server
from tests.support.node_reference import documented_error_types, documented_outputs, documented_trigger_paths
from tests.support.processes import System

pytestmark = pytest.mark.e2e

PIPELINE = "deals"  # the record triggers watch this pipeline
SCRATCH = "scratch"  # the record nodes write here, where no trigger watches
INPUT_KEY = "<input key>"
RECORD_KINDS = ("record_created", "record_updated", "record_deleted", "field_changed")


def variable(path: str) -> str:
    """The set variable that holds a documented path's value: ``trigger.webhook.body`` is
    ``webhook__body``."""
    return path.removeprefix("trigger.").replace(".", "__")


def paths_for(kind: str) -> list[str]:
    """The documented paths of a kind, the manual input's placeholder filled with the key the test sends."""
    return sorted(path.replace(INPUT_KEY, "customer") for path in documented_trigger_paths()[kind])


def node(node_id: str, node_type: str, parent: str | None = None, **data: object) -> dict:
    found = {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}
    return {**found, "parentId": parent} if parent else found


def chain(*steps: str | tuple[str, str]) -> list[dict]:
    """Edges along ``steps``; a step ``(node, handle)`` leaves that node by the handle."""
    edges = []
    for before, after in pairwise(steps):
        source, handle = before if isinstance(before, tuple) else (before, None)
        target = after[0] if isinstance(after, tuple) else after
        edges.append({"id": f"{source}-{target}", "source": source, "target": target, "sourceHandle": handle})
    return edges


def reader(kind: str, **trigger: object) -> dict:
    """Trigger -> a set node reading every documented path of the kind -> end."""
    variables = {variable(path): f"{{{{ {path} }}}}" for path in paths_for(kind)}
    if kind == "webhook":
        variables["x"] = "{{ trigger.webhook.body.x }}"
    return {
        "nodes": [
            node("start", "trigger", kind=kind, **trigger),
            node("seen", "set", variables=variables),
            node("done", "end"),
        ],
        "edges": chain("start", "seen", "done"),
    }


def shapes(server: LoopbackServer) -> dict:
    """A manual run through most node types, each output checked against the documented fields."""
    record_id = "{{ nodes.create.output.record.id }}"
    is_ada = {"field": "trigger.customer", "operator": "equals", "value": "Ada"}
    nodes = [
        node("start", "trigger", kind="manual"),
        node("vars", "set", variables={"greeting": "Hello {{ trigger.customer }}", "count": 2}),
        node("check", "condition", condition={"field": "vars.count", "operator": "greater_than", "value": 1}),
        node("route", "switch", cases=[{"name": "ada", "condition": is_ada}]),
        node("create", "record_create", pipeline_id=SCRATCH, data={"name": "{{ trigger.customer }}"}),
        node("update", "record_update", pipeline_id=SCRATCH, record_id=record_id, data={"tier": "gold"}),
        node("find", "record_find", pipeline_id=SCRATCH, limit=5),
        node("remove", "record_delete", pipeline_id=SCRATCH, record_id=record_id),
        node("loop", "for_each", items="{{ trigger.items }}"),
        node("each", "set", parent="loop", variables={"doubled": "{{ item * 2 }}"}),
        node("pause", "wait_delay", duration_seconds=0.1),
        node("call", "http_request", method="POST", url=f"{server.url}/echo", body={"hi": 1}),
        node("hook", "webhook_out", url=f"{server.url}/hook", payload={"hi": 2}),
        node("task", "task_notify", assignee={"role": "admin"}, title="Look at {{ trigger.customer }}"),
        node(
            "done", "end", output={"answer": "{{ vars.greeting }}", "items": "{{ nodes.loop.output.count }}"}
        ),
    ]
    edges = chain(
        "start", "vars", ("check", "true"), ("route", "case:ada"), "create", "update", "find", "remove",
        "loop", "pause", "call", "hook", "task", "done",
    )  # fmt: skip
    return {"nodes": nodes, "edges": edges}


def failures() -> dict:
    """Three nodes that fail, each with an error edge so the run goes on and shows every error."""
    keep_going = {"on_error": "error_edge"}
    nodes = [
        node("start", "trigger", kind="manual"),
        node("bad_template", "set", variables={"x": "{{ trigger.missing.deeper }}"}, **keep_going),
        node(
            "bad_condition",
            "condition",
            condition={"field": "trigger.customer", "operator": "greater_than", "value": 5},
            **keep_going,
        ),
        node("loop", "for_each", items="{{ trigger.items }}", failure_policy="fail", **keep_going),
        node("bad_item", "set", parent="loop", variables={"y": "{{ item.nope }}"}),
    ]
    edges = [*chain("start", "bad_template"), *chain("start", "bad_condition"), *chain("start", "loop")]
    return {"nodes": nodes, "edges": edges}


# -- the module's world: services, workflows, their runs --------------------------------------------


@dataclass
class World:
    runs: dict[str, dict]  # by name: the finished run with its node log
    webhook_body: dict
    record: dict

    def nodes(self, name: str) -> dict[str, dict]:
        return {n["node_id"]: n for n in self.runs[name]["nodes"]}


def _created(api: httpx.Client, name: str, definition: dict, *, activate: bool = True) -> str:
    answer = api.post("/api/v1/workflows", json={"name": name, "definition": definition})
    assert answer.status_code == 201, answer.text
    workflow_id = answer.json()["id"]
    if activate:
        activated = api.post(f"/api/v1/workflows/{workflow_id}/activate", json={})
        assert activated.status_code == 200, activated.text
    return workflow_id


def _finished_run(api: httpx.Client, workflow_id: str) -> dict | None:
    listed = api.get("/api/v1/runs", params={"workflow_id": workflow_id})
    if listed.status_code != 200:
        return None
    done = [r for r in listed.json()["items"] if r["status"] != "running"]
    if not done:
        return None
    answer = api.get(f"/api/v1/runs/{done[-1]['run_id']}")
    return answer.json() if answer.status_code == 200 else None


@pytest.fixture(scope="module")
def world(infra: Infra, module_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    clock = tmp_path_factory.mktemp("clock") / "now"
    write_clock(clock, datetime.now(UTC))
    system = System(infra, module_namespace)
    env = {"MILLRACE_TRIGGER_CLOCK_FILE": str(clock), "MILLRACE_TRIGGER_SCHEDULE_TICK_SECONDS": "0.1"}
    tenant = f"ref-{uuid.uuid4().hex[:8]}"
    try:
        system.start(extra_env=env)
        account = provision_tenant(infra, module_namespace, tenant)
        grant_loopback(infra, module_namespace, tenant)
        with signed_in(system.url("gateway"), account) as api, loopback_server() as server:
            server.route("/echo", Answer(200, {"echoed": True}))
            server.route("/hook", Answer(200, {"hooked": True}))
            for pipeline in (PIPELINE, SCRATCH):
                made = api.post("/api/v1/pipelines", json={"id": pipeline, "name": pipeline})
                assert made.status_code == 201, made.text
            workflows = {}
            for kind in RECORD_KINDS:
                watched: dict = {"pipeline_ids": [PIPELINE]}
                if kind == "field_changed":
                    watched["fields"] = [{"field": "status"}]
                workflows[kind] = _created(api, kind, reader(kind, **watched))
            workflows["webhook"] = _created(api, "webhook", reader("webhook"))
            workflows["scheduled"] = _created(api, "scheduled", reader("scheduled", cron="* * * * *"))
            workflows["manual"] = _created(api, "manual", reader("manual"), activate=False)
            workflows["shapes"] = _created(api, "shapes", shapes(server), activate=False)
            workflows["failures"] = _created(api, "failures", failures(), activate=False)

            # Fire every trigger, then wait for every run at once.
            for name, given in (
                ("manual", {"customer": "Ada"}),
                ("shapes", {"customer": "Ada", "items": [1, 2, 3]}),
                ("failures", {"customer": "Ada", "items": [1, 2]}),
            ):
                started = api.post(f"/api/v1/workflows/{workflows[name]}/runs", json={"input": given})
                assert started.status_code == 202, started.text
            token = (
                api.get(f"/api/v1/workflows/{workflows['webhook']}/webhook").json()["url"].rsplit("/", 1)[1]
            )
            webhook_body = {"x": 42, "order": {"id": 7}}
            called = httpx.post(f"{system.url('gateway')}/hooks/{token}?source=test", json=webhook_body)
            assert called.status_code == 202, called.text
            # The scheduler's clock moves to just past the next minute's slot (the cursor starts at the
            # activation, so that slot is due whenever the scheduler looks).
            slot = (datetime.now(UTC) + timedelta(minutes=1)).replace(second=0, microsecond=0)
            write_clock(clock, slot + timedelta(seconds=2))
            record = api.post(f"/api/v1/pipelines/{PIPELINE}/records", json={"data": {"status": "open"}})
            assert record.status_code == 201, record.text
            record_url = f"/api/v1/pipelines/{PIPELINE}/records/{record.json()['id']}"
            updated = api.patch(record_url, json={"data": {"status": "won"}})
            assert updated.status_code == 200, updated.text
            assert api.delete(record_url).status_code == 204

            runs: dict[str, dict] = {}
            deadline = time.monotonic() + 40
            while len(runs) < len(workflows) and time.monotonic() < deadline:
                for name, workflow_id in workflows.items():
                    if name not in runs and (found := _finished_run(api, workflow_id)) is not None:
                        runs[name] = found
                time.sleep(0.2)
            missing = sorted(set(workflows) - set(runs))
            assert not missing, f"no finished run of {missing} within 40 s"
            yield World(runs, webhook_body, record.json())
    finally:
        system.stop_all()


# -- trigger payload paths --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["manual", "webhook", "scheduled", *RECORD_KINDS])
def test_every_documented_trigger_path_resolves_in_a_real_run(world: World, kind: str):
    run = world.runs[kind]
    seen = world.nodes(kind)["seen"]
    assert run["status"] == "completed", (run.get("error"), seen.get("error"))
    assert seen["status"] == "succeeded"
    # The set node's output is flat: exactly one field per variable.
    assert set(seen["output"]) == {variable(p) for p in paths_for(kind)} | (
        {"x"} if kind == "webhook" else set()
    )
    assert seen["output"][variable("trigger.kind")] == kind
    # And the run has no path the reference leaves out: its trigger's payload, one level into the
    # groups the reference lists paths under, is exactly the documented paths.
    documented = paths_for(kind)
    payload = world.nodes(kind)["start"]["output"]
    real = set()
    for key, value in {"kind": payload["kind"], **payload["data"]}.items():
        path = f"trigger.{key}"
        grouped = isinstance(value, dict) and any(p.startswith(f"{path}.") for p in documented)
        real |= {f"{path}.{member}" for member in value} if grouped else {path}
    assert real == set(documented)


def test_the_paths_carry_what_the_trigger_sent(world: World):
    manual = world.nodes("manual")["seen"]["output"]
    assert manual["customer"] == "Ada"
    webhook = world.nodes("webhook")["seen"]["output"]
    assert webhook["x"] == 42
    assert webhook["webhook__body"] == world.webhook_body
    assert webhook["webhook__query"] == {"source": "test"}
    assert webhook["webhook__content_type"] == "json"
    created = world.nodes("record_created")["seen"]["output"]
    assert created["record__id"] == world.record["id"]
    assert created["record__data"] == {"status": "open"}
    assert created["record__old_data"] is None
    changed = world.nodes("field_changed")["seen"]["output"]
    assert changed["changes"] == {"status": {"old": "open", "new": "won"}}
    assert changed["changed_fields"] == ["status"]
    assert world.nodes("record_deleted")["seen"]["output"]["record__data"] == {}
    scheduled = world.nodes("scheduled")["seen"]["output"]
    assert scheduled["schedule__cron"] == "* * * * *"
    assert datetime.fromisoformat(scheduled["schedule__slot"]).second == 0


# -- node outputs -----------------------------------------------------------------------------------


def test_real_node_outputs_have_the_documented_fields(world: World):
    run = world.runs["shapes"]
    nodes = world.nodes("shapes")
    assert run["status"] == "completed", (
        run.get("error"),
        [n["error"] for n in nodes.values() if n["error"]],
    )
    documented = documented_outputs()
    placeholders = {"<variable>", "<output key>"}
    checked = set()
    for node_id, execution in nodes.items():
        fields = documented[execution["node_type"]]
        output = execution["output"]
        if placeholders & set(fields):
            continue
        assert sorted(output) == sorted(fields), f"{node_id} ({execution['node_type']})"
        checked.add(execution["node_type"])
    assert len(checked) >= 12, checked
    # set and end: flat, their own keys and nothing else.
    assert nodes["vars"]["output"] == {"greeting": "Hello Ada", "count": 2}
    assert nodes["each[1]"]["output"] == {"doubled": 4}
    assert nodes["done"]["output"] == {"answer": "Hello Ada", "items": 3}


# -- error types ------------------------------------------------------------------------------------


def test_real_failures_carry_the_documented_error_types(world: World):
    nodes = world.nodes("failures")
    types = {node_id: (execution["error"] or {}).get("type") for node_id, execution in nodes.items()}
    assert types["bad_template"] == "template"
    assert types["bad_condition"] == "condition"
    assert types["loop"] == "item_failed"
    assert types["bad_item[0]"] == "template"
    assert set(filter(None, types.values())) <= set(documented_error_types())
    assert world.runs["failures"]["status"] == "completed"  # every failure took its error edge
