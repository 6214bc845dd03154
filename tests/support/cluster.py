"""The fault drill on the secured three-node cluster (deploy/local's cluster profiles): two instances of
every service, a steady load spread over both gateways, and faults that a cluster should shrug off:
kill -9 of one Kafka node (restarted after a hold), kill -9 of one instance of every service at once
(left down: the survivors take over).

The audit is the drill's (tests/support/drills.py: every accepted call exactly one completed run, no
attempt sent while an earlier one of the same node was undecided) and, for per-record order: every
record is changed twice through the API right after it is created (through the other gateway, then
through the first), so the gateways' and the node runner's outbox rows for one record race each
other; on ``records.events`` every record's events must form one chain (``record.created`` first,
each ``record.updated``'s ``old_data`` the data of the event before it, the last one the record as
stored) and the workflow's own update must be there exactly once.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, text

from tests.support.drills import Drill, Fault
from tests.support.kafka import read_all
from tests.support.network import LoopbackServer
from tests.support.processes import SERVICES, System

ROOT = Path(__file__).resolve().parents[2]
CHANGES_PER_RECORD = 2
"""API changes the load makes to each record it creates (the workflow then makes one more)."""


def _local_module(name: str) -> Any:
    """deploy/local/<name>.py (kafka_cluster imports infra by that name)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / "local" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class ClusterNodes:
    """The Kafka nodes of the local cluster profile whose bootstrap list the tests were given."""

    def __init__(self, kafka_bootstrap: str) -> None:
        self._infra = _local_module("infra")
        self._cluster = _local_module("kafka_cluster")
        found = [
            profile
            for profile in map(self._infra.get_profile, self._infra.PROFILES)
            if profile.clustered and self._cluster.bootstrap(profile) == kafka_bootstrap
        ]
        if not found:
            raise RuntimeError(
                f"the cluster drill kills and restarts nodes of a local cluster profile; {kafka_bootstrap} "
                "is none of deploy/local/infra.py's (run it with `make test`: its cluster tier starts one)"
            )
        self.profile = found[0]

    @property
    def nodes(self) -> list[int]:
        return list(self._cluster.node_ids(self.profile))

    def kill(self, node: int) -> None:
        self._cluster.kill_node(self.profile, node)

    def start(self, node: int) -> None:
        self._cluster.start_node(self.profile, node)
        self._cluster.wait_ready(self.profile, [node])

    def ensure_running(self) -> None:
        """After the drill, whatever happened in it: every node up again."""
        for node in self.nodes:
            if self._cluster.node_pid(self.profile, node) is None:
                self.start(node)


class ClusterDrill(Drill):
    """The drill over two systems (the same namespace and keys: two instances of every service)."""

    def __init__(
        self, systems: list[System], server: LoopbackServer, *, ready_seconds: float = 90, **options: Any
    ) -> None:
        self.systems = systems
        self.ready_seconds = ready_seconds
        self.nodes = ClusterNodes(systems[0].infra.kafka_bootstrap)
        self._turn = itertools.count()
        self._changes_lock = threading.Lock()
        self.changes: dict[str, int] = {}  # record id -> API changes accepted
        self.record_events = 0  # read back from records.events by the audit
        super().__init__(systems[0], server, broker=self.nodes, **options)

    # -- load: over every gateway that runs ------------------------------------------------------

    def _gateways(self) -> list[str]:
        return [s.services["gateway"].url for s in self.systems if "gateway" in s.services]

    def _gateway(self) -> str | None:
        gateways = self._gateways()
        return gateways[next(self._turn) % len(gateways)] if gateways else None

    def _after_record(self, client: httpx.Client, record_id: str) -> None:
        """Change the record at once, through the other gateway and then through this one."""
        accepted = 0
        for step in range(1, CHANGES_PER_RECORD + 1):
            base = self._gateway()
            if base is None:
                break
            with contextlib.suppress(httpx.TransportError):
                answer = client.patch(
                    f"{base}/api/v1/pipelines/drill/records/{record_id}",
                    json={"data": {"step": step}},
                    headers=self.api.headers,
                )
                accepted += answer.status_code == 200
        with self._changes_lock:
            self.changes[record_id] = accepted

    # -- faults ------------------------------------------------------------------------------------

    def kill_kafka_node(self, node: int) -> None:
        fault = Fault(f"kill -9 Kafka node {node}", time.monotonic())
        self.nodes.kill(node)
        time.sleep(self.hold)
        self.nodes.start(node)
        self._finish(fault)

    def kill_one_instance_of_each(self, system: System, *, restart: bool = False) -> None:
        """kill -9 of every service of `system` at once: the other system's instances must take over
        their partitions, outbox rows and timers. Restarted after the hold only with `restart` (five
        Python processes starting cost minutes of CPU on a busy two-core machine)."""
        fault = Fault(
            f"kill -9 one instance of each service{'' if restart else ' (left down)'}", time.monotonic()
        )
        for name in SERVICES:
            system.stop(name, signal.SIGKILL)
        self.report.kills += len(SERVICES) - 1  # _finish counts one
        time.sleep(self.hold)
        if restart:
            system.start(SERVICES, extra_env=self.system_env, ready_timeout=self.ready_seconds)
        self._finish(fault)

    # -- audit -------------------------------------------------------------------------------------

    def _check_recovery(self, runs: list[dict]) -> None:
        """A fault's recovery time: from the kill to the end of the first run that started after it
        (the survivors carry the load, so the cluster need not wait for the restart)."""
        finished = sorted(
            (r["started_at"].timestamp(), r["finished_at"].timestamp())
            for r in runs
            if r["finished_at"] is not None
        )
        offset = time.time() - time.monotonic()
        for fault in self.report.faults:
            began = fault.began + offset
            after = [f for s, f in finished if s >= began]
            fault.recovered_after = (min(after) - began) if after else None

    def _check_records(self, engine: Engine, records: set[str]) -> None:
        with engine.connect() as connection:
            rows = connection.execute(
                text("select id, data from records where pipeline_id = 'drill' and tenant_id = :t"),
                {"t": self.account.tenant_id},
            ).mappings()
            stored = {str(r["id"]): r["data"] for r in rows if str(r["id"]) in records}
        unseen = [record for record in records if not (stored.get(record) or {}).get("seen")]
        if unseen:
            self.report.problems.append(f"{len(unseen)} records were never updated, e.g. {unseen[:3]}")
        events: dict[str, list[dict]] = {}
        delivered: set[str] = set()  # a message delivered again (same id) is one event to its readers
        for message in read_all(self.system.infra.kafka_bootstrap, f"{self.system.namespace}.records.events"):
            if message.get("record_id") in records and message["message_id"] not in delivered:
                delivered.add(message["message_id"])
                events.setdefault(message["record_id"], []).append(message)
        self.record_events = sum(len(chain) for chain in events.values())
        broken, twice, missing = [], [], []
        for record in records:
            chain = events.get(record, [])
            problem = chain_problem(chain, stored.get(record))
            if problem:
                broken.append(f"{record}: {problem}")
            workflow_updates = {
                m["message_id"]
                for m in chain
                if m["type"] == "record.updated"
                and (m.get("data") or {}).get("seen")
                and not (m.get("old_data") or {}).get("seen")
            }
            if len(workflow_updates) > 1:
                twice.append(record)
            updates = {m["message_id"] for m in chain if m["type"] == "record.updated"}
            if len(updates) != self.changes.get(record, 0) + 1:
                missing.append(f"{record}: {len(updates)} updates, {self.changes.get(record, 0)} by the API")
        if broken:
            self.report.problems.append(f"{len(broken)} records' events are out of order, e.g. {broken[:3]}")
        if twice:
            self.report.problems.append(
                f"{len(twice)} records were updated by the workflow twice: {twice[:3]}"
            )
            self.report.duplicated += len(twice)
        if missing:
            self.report.problems.append(f"{len(missing)} records have too few or many updates: {missing[:3]}")


def chain_problem(chain: list[dict], stored: dict | None) -> str | None:
    """Why a record's events (in topic order) are not one chain ending in its stored data, if so."""
    if not chain:
        return "no events"
    if chain[0]["type"] != "record.created":
        return f"first event is {chain[0]['type']}"
    for before, after in itertools.pairwise(chain):
        if after["type"] == "record.created":
            return "record.created twice"
        if after.get("old_data") != before.get("data"):
            return (
                f"{after['type']} of {after.get('occurred_at')} follows data {before.get('data')} (of "
                f"{before.get('occurred_at')}) but names {after.get('old_data')}"
            )
    if stored is not None and chain[-1].get("data") != stored:
        return f"last event has {chain[-1].get('data')}, the record {stored}"
    return None
