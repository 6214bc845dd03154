"""Fault drills: a steady workload through the public API while services are killed and Kafka and
PostgreSQL restart, then an audit of everything that was accepted.

The workload: webhook calls to a workflow that POSTs to a loopback server, and records created in a
pipeline whose workflow calls the server once per item of a for_each and then updates the record.
The faults, in turn: kill -9 of each service (then a restart), a Kafka broker restart, a PostgreSQL
restart, each held down ``hold_seconds``. The audit: every accepted webhook and record is exactly one
completed run; every record was updated once (one ``record.updated`` message per record); every call
the server received was a first attempt (no attempt sent while an earlier one was undecided); while a
dependency was down the API answered 2xx or 503, never a 500 and never slower than ``slow_seconds``.
``tests/e2e/test_fault_drills.py`` runs a short drill, ``bench/fault_drills.py`` a long one.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, create_engine, text

from tests.support.api import provision_tenant, signed_in
from tests.support.kafka import read_all
from tests.support.network import Answer, LoopbackServer, grant_loopback
from tests.support.processes import SERVICES, System

ROOT = Path(__file__).resolve().parents[2]
ITEMS = 3


def _infra_module() -> Any:
    spec = importlib.util.spec_from_file_location(
        "millrace_local_infra", ROOT / "deploy" / "local" / "infra.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class LocalBroker:
    """The local profile's Kafka and PostgreSQL (deploy/local/infra.py), killed and started again."""

    def __init__(self, kafka_bootstrap: str) -> None:
        self._infra = _infra_module()
        port = int(kafka_bootstrap.rsplit(":", 1)[1])
        found = [
            self._infra.get_profile(name)
            for name in self._infra.PROFILES
            if self._infra.get_profile(name).kafka_port == port
        ]
        if not found:
            raise RuntimeError(
                f"the drill restarts Kafka and PostgreSQL of a local profile; {kafka_bootstrap} is none of "
                "deploy/local/infra.py's (run the suite with `make test`)"
            )
        self.profile = found[0]

    def kill_kafka(self) -> None:
        pid = self._infra.kafka_pid(self.profile)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                import os

                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 20
            while self._infra.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)

    def start_kafka(self) -> None:
        pid = self._infra.start_kafka(self.profile)
        self._infra.wait_kafka(self.profile, pid)

    def stop_postgres(self) -> None:
        self._infra.pg_server("pg_ctl", "stop", "-D", str(self.profile.pg_dir), "-m", "immediate", "-w")

    def start_postgres(self) -> None:
        self._infra.start_postgres(self.profile)

    def ensure_running(self) -> None:
        """After a drill, whatever happened in it: Kafka and PostgreSQL up again, so a drill that failed
        halfway does not leave the tests after it without them."""
        if self._infra.kafka_pid(self.profile) is None:
            self.start_kafka()
        if not self._infra.wait_tcp(self._infra.HOST, self.profile.pg_port, 0):
            self.start_postgres()


@dataclass
class Call:
    kind: str  # "webhook" or "record"
    sent_at: float
    took: float
    status: int | None  # None: no answer (connection refused: the gateway was down)
    ident: str | None = None  # run id (webhook) or record id (record), when accepted


@dataclass
class Fault:
    name: str
    began: float
    ended: float = 0.0
    recovered_after: float | None = None


@dataclass
class DrillReport:
    calls: list[Call] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    runs: int = 0
    kills: int = 0
    lost: int = 0
    duplicated: int = 0
    retried: int = 0  # calls the target saw under a later attempt (the earlier one failed before it)
    retry_reasons: Counter = field(default_factory=Counter)

    def lines(self) -> list[str]:
        statuses = Counter(str(c.status) for c in self.calls)
        accepted = sum(1 for c in self.calls if c.ident)
        summary = (
            f"calls {len(self.calls)} (by answer: {dict(sorted(statuses.items()))}); accepted {accepted}; "
            f"completed runs {self.runs}; kills and restarts {self.kills}; lost {self.lost}; "
            f"duplicated {self.duplicated}; calls under a later attempt {self.retried}"
        )
        lines = [summary]
        for reason, count in self.retry_reasons.most_common(5):
            lines.append(f"  retried {count}x after: {reason}")
        for fault in self.faults:
            recovery = f"{fault.recovered_after:.1f} s" if fault.recovered_after is not None else "n/a"
            lines.append(f"  {fault.name:<22} down {fault.ended - fault.began:5.1f} s, recovered {recovery}")
        return lines


def node(node_id: str, node_type: str, **data: Any) -> dict:
    return {"id": node_id, "type": node_type, "data": {"name": node_id, **data}}


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}-{handle}", "source": source, "target": target, "sourceHandle": handle}


class Drill:
    def __init__(
        self,
        system: System,
        server: LoopbackServer,
        *,
        rate_per_second: float = 8.0,
        hold_seconds: float = 3.0,
        slow_seconds: float = 10.0,
        settle_seconds: float = 4.0,
        log: Callable[[str], None] = print,
        broker: Any = None,
    ) -> None:
        self.system = system
        self.server = server
        self.rate = rate_per_second
        self.hold = hold_seconds
        self.slow = slow_seconds
        self.settle = settle_seconds
        self.log = log
        self.report = DrillReport()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.broker = broker or LocalBroker(system.infra.kafka_bootstrap)
        server.route("/hook", Answer(200, {"ok": True}))
        server.route("/item", Answer(200, {"ok": True}))
        tenant = f"drill{uuid.uuid4().hex[:8]}"
        self.account = provision_tenant(system.infra, system.namespace, tenant)
        grant_loopback(system.infra, system.namespace, tenant)
        self.api = signed_in(system.url("gateway"), self.account)
        self.webhook_workflow, self.hook_path = self._webhook_workflow()
        self.record_workflow = self._record_workflow()

    # -- set-up ------------------------------------------------------------------------------------

    def _create(self, name: str, nodes: list[dict], edges: list[dict]) -> str:
        definition = {"nodes": nodes, "edges": edges, "settings": {"max_executions_per_hour": 100_000}}
        created = self.api.post("/api/v1/workflows", json={"name": name, "definition": definition})
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        activated = self.api.post(f"/api/v1/workflows/{workflow_id}/activate", json={})
        assert activated.status_code == 200, activated.text
        return workflow_id

    def _webhook_workflow(self) -> tuple[str, str]:
        workflow_id = self._create(
            "drill webhooks",
            [
                node("hook", "trigger", kind="webhook"),
                node(
                    "call",
                    "http_request",
                    method="POST",
                    url=f"{self.server.url}/hook",
                    body={"n": "{{ trigger.webhook.body.n }}"},
                ),
                node("done", "end"),
            ],
            [edge("hook", "call"), edge("call", "done")],
        )
        url = self.api.get(f"/api/v1/workflows/{workflow_id}/webhook").json()["url"]
        return workflow_id, "/hooks/" + url.rsplit("/", 1)[1]

    def _record_workflow(self) -> str:
        assert self.api.post("/api/v1/pipelines", json={"id": "drill", "name": "Drill"}).status_code == 201
        return self._create(
            "drill records",
            [
                node("new", "trigger", kind="record_created", pipeline_ids=["drill"]),
                node("each", "for_each", items=f"{{{{ [{', '.join(str(i) for i in range(ITEMS))}] }}}}"),
                {
                    **node(
                        "call",
                        "http_request",
                        method="POST",
                        url=f"{self.server.url}/item",
                        body={"record": "{{ trigger.record.id }}", "item": "{{ item }}"},
                    ),
                    "parentId": "each",
                },
                node(
                    "mark",
                    "record_update",
                    pipeline_id="drill",
                    record_id="{{ trigger.record.id }}",
                    data={"seen": True},
                ),
                node("done", "end"),
            ],
            [edge("new", "each"), edge("each", "mark"), edge("mark", "done")],
        )

    # -- load ----------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def load(self) -> Iterator[None]:
        threads = [
            threading.Thread(target=self._send_loop, args=(kind,), daemon=True)
            for kind in ("webhook", "record")
        ]
        for thread in threads:
            thread.start()
        try:
            yield
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=self.slow + 5)

    def _send_loop(self, kind: str) -> None:
        period = 2.0 / self.rate  # the two loops share the rate
        with httpx.Client(timeout=self.slow + 5) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                self._send(client, kind)
                time.sleep(max(0.0, period - (time.monotonic() - began)))

    def _send(self, client: httpx.Client, kind: str) -> None:
        base = self._gateway()
        began = time.monotonic()
        status: int | None = None
        ident: str | None = None
        if base is not None:
            try:
                if kind == "webhook":
                    n = uuid.uuid4().hex
                    answer = client.post(
                        base + self.hook_path, json={"n": n}, headers={"x-millrace-delivery": f"drill-{n}"}
                    )
                    if answer.status_code == 202:
                        ident = answer.json()["run_id"]
                else:
                    answer = client.post(
                        base + "/api/v1/pipelines/drill/records",
                        json={"data": {"n": uuid.uuid4().hex}},
                        headers=self.api.headers,
                    )
                    if answer.status_code == 201:
                        ident = answer.json()["id"]
                        self._after_record(client, ident)
                status = answer.status_code
            except httpx.TransportError:
                status = None
        took = time.monotonic() - began
        with self._lock:
            self.report.calls.append(Call(kind, began, took, status, ident))

    def _gateway(self) -> str | None:
        """Where the next call goes (None: no gateway runs)."""
        return self.system.services["gateway"].url if "gateway" in self.system.services else None

    def _after_record(self, client: httpx.Client, record_id: str) -> None:
        """What the load does with a record it has just created (nothing here)."""

    # -- faults --------------------------------------------------------------------------------------

    def kill_service(self, name: str) -> None:
        fault = Fault(f"kill -9 {name}", time.monotonic())
        self.system.stop(name, signal.SIGKILL)
        time.sleep(self.hold)
        self.system.start((name,), extra_env=self.system_env)
        self._finish(fault)

    def restart_kafka(self) -> None:
        fault = Fault("Kafka restart", time.monotonic())
        self.broker.kill_kafka()
        time.sleep(self.hold)
        self.broker.start_kafka()
        self._finish(fault)

    def restart_postgres(self) -> None:
        fault = Fault("PostgreSQL restart", time.monotonic())
        self.broker.stop_postgres()
        time.sleep(self.hold)
        self.broker.start_postgres()
        self._finish(fault)

    system_env: dict[str, str] | None = None

    def _finish(self, fault: Fault) -> None:
        fault.ended = time.monotonic()
        self.report.faults.append(fault)
        self.report.kills += 1
        self.log(f"drill: {fault.name} done after {fault.ended - fault.began:.1f} s")
        time.sleep(self.settle)

    def run_all_faults(self) -> None:
        for name in SERVICES:
            self.kill_service(name)
        self.restart_kafka()
        self.restart_postgres()

    # -- audit ---------------------------------------------------------------------------------------

    def audit(self, drain_seconds: float = 120) -> DrillReport:
        report = self.report
        accepted = [c for c in report.calls if c.ident]
        webhooks = {c.ident for c in accepted if c.kind == "webhook"}
        records = {c.ident for c in accepted if c.kind == "record"}
        engine = self._engine()
        try:
            deadline = time.monotonic() + drain_seconds
            while True:
                runs = self._runs(engine)
                done = [r for r in runs if r["status"] != "running"]
                if len(done) >= len(webhooks) + len(records) and len(done) == len(runs):
                    break
                if time.monotonic() > deadline:
                    break
                time.sleep(1)
            self._check_runs(runs, webhooks, records)
            self._check_recovery(runs)
            self._check_records(engine, records)
            self._count_retries(engine)
            self._check_attempts(engine)
        finally:
            engine.dispose()
        self._check_answers()
        return report

    def _engine(self) -> Engine:
        schema = self.system.infra.settings(self.system.namespace).database_schema
        return create_engine(
            self.system.infra.database_url, connect_args={"options": f"-csearch_path={schema}"}
        )

    def _runs(self, engine: Engine) -> list[dict]:
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "select run_id as id, workflow_id, status, trigger, finished_at, started_at from runs "
                    "where workflow_id in (cast(:a as uuid), cast(:b as uuid))"
                ),
                {"a": self.webhook_workflow, "b": self.record_workflow},
            ).mappings()
            return [dict(row) for row in rows]

    def _check_runs(self, runs: list[dict], webhooks: set[str], records: set[str]) -> None:
        report = self.report
        by_webhook = Counter(str(r["id"]) for r in runs if str(r["workflow_id"]) == self.webhook_workflow)
        by_record = Counter(
            _record_id(r["trigger"]) for r in runs if str(r["workflow_id"]) == self.record_workflow
        )
        report.runs = sum(1 for r in runs if r["status"] == "completed")
        lost = [w for w in webhooks if by_webhook[w] == 0] + [r for r in records if by_record[r] == 0]
        doubled = [k for k, n in (by_webhook + by_record).items() if n > 1]
        report.lost, report.duplicated = len(lost), len(doubled)
        if lost:
            report.problems.append(f"{len(lost)} accepted calls have no run, e.g. {lost[:3]}")
        if doubled:
            report.problems.append(
                f"{len(doubled)} accepted calls have more than one run, e.g. {doubled[:3]}"
            )
        unfinished = [str(r["id"]) for r in runs if r["status"] != "completed"]
        if unfinished:
            report.problems.append(f"{len(unfinished)} runs did not complete, e.g. {unfinished[:3]}")

    def _check_recovery(self, runs: list[dict]) -> None:
        """A fault's recovery time: from its end to the first run that started after it and finished."""
        finished = sorted(
            (r["started_at"].timestamp(), r["finished_at"].timestamp())
            for r in runs
            if r["finished_at"] is not None
        )
        offset = time.time() - time.monotonic()
        for fault in self.report.faults:
            ended = fault.ended + offset
            after = [f for s, f in finished if s >= ended]
            fault.recovered_after = (min(after) - ended) if after else None

    def _count_retries(self, engine: Engine) -> None:
        """Why attempts were retried (the error of each retried attempt), for the report."""
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "select e.payload->'error'->>'type' as type,"
                    " left(e.payload->'error'->>'message', 80) as message "
                    "from run_events e join runs r on r.run_id = e.run_id "
                    "where e.type = 'node.retry_scheduled'"
                    " and r.workflow_id in (cast(:a as uuid), cast(:b as uuid))"
                ),
                {"a": self.webhook_workflow, "b": self.record_workflow},
            ).all()
        self.report.retry_reasons = Counter(f"{row.type}: {row.message}" for row in rows)

    def _check_records(self, engine: Engine, records: set[str]) -> None:
        with engine.connect() as connection:
            rows = connection.execute(
                text("select id, data from records where pipeline_id = 'drill' and tenant_id = :t"),
                {"t": self.account.tenant_id},
            ).mappings()
            unseen = [str(r["id"]) for r in rows if str(r["id"]) in records and not r["data"].get("seen")]
        if unseen:
            self.report.problems.append(f"{len(unseen)} records were never updated, e.g. {unseen[:3]}")
        topic = f"{self.system.namespace}.records.events"
        updates: dict[str, set[str]] = {}
        for message in read_all(self.system.infra.kafka_bootstrap, topic):
            if message.get("type") == "record.updated" and message.get("record_id") in records:
                updates.setdefault(message["record_id"], set()).add(message["message_id"])
        twice = [record for record, ids in updates.items() if len(ids) > 1]
        if twice:
            self.report.problems.append(f"{len(twice)} records were updated more than once, e.g. {twice[:3]}")
            self.report.duplicated += len(twice)

    def _check_attempts(self, engine: Engine) -> None:
        """No attempt was sent while an earlier attempt of the same node was undecided: every node the
        target saw under attempt n > 1 has, in its run's log, attempt n-1's failure decided (a
        ``node.retry_scheduled``) before attempt n was scheduled. Calls the target saw under a later
        attempt are counted for the report (a call can reach the target and still fail, a connection
        reset on the answer, say, and then be retried: that is a decided failure, not an overlap)."""
        keys = {
            r.header("idempotency-key") or ""
            for path in ("/hook", "/item")
            for r in self.server.requests_to(path)
        }
        self.report.retried = sum(1 for key in keys if not key.endswith(":1"))
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "select e.run_id, e.seq, e.type, e.payload->>'node_id' as node_id, "
                    "(e.payload->>'attempt')::int as attempt "
                    "from run_events e join runs r on r.run_id = e.run_id "
                    "where e.type in ('node.scheduled', 'node.retry_scheduled') "
                    "and r.workflow_id in (cast(:a as uuid), cast(:b as uuid))"
                ),
                {"a": self.webhook_workflow, "b": self.record_workflow},
            ).all()
        decided = {
            (row.run_id, row.node_id, row.attempt): row.seq
            for row in rows
            if row.type == "node.retry_scheduled"
        }
        overlapping = [
            f"{row.run_id}:{row.node_id}:{row.attempt}"
            for row in rows
            if row.type == "node.scheduled"
            and row.attempt > 1
            and decided.get((row.run_id, row.node_id, row.attempt - 1), row.seq) >= row.seq
        ]
        if overlapping:
            self.report.problems.append(
                f"{len(overlapping)} attempts were sent before the one before them was decided, "
                f"e.g. {overlapping[:3]}"
            )

    def _check_answers(self) -> None:
        bad = [c for c in self.report.calls if c.status is not None and c.status >= 500 and c.status != 503]
        slow = [c for c in self.report.calls if c.took > self.slow]
        if bad:
            self.report.problems.append(
                f"{len(bad)} answers were 5xx other than 503: {Counter(c.status for c in bad)}"
            )
        if slow:
            self.report.problems.append(
                f"{len(slow)} calls took over {self.slow:g} s (max {max(c.took for c in slow):.1f} s)"
            )

    def close(self) -> None:
        self.api.close()
        self.broker.ensure_running()


def _record_id(trigger: Any) -> str | None:
    data = trigger if isinstance(trigger, dict) else json.loads(trigger or "{}")
    record = (data.get("data") or {}).get("record") or data.get("record") or {}
    return record.get("id")
