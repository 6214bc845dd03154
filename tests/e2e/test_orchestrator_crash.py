"""The orchestrator killed with SIGKILL at random moments while runs are in flight, and restarted.

Runs are started through the API in waves; while the orchestrator works through a wave it is killed
(mid-transaction, between commit and publish, between publish and offset commit: wherever the
moment falls) and started again. Afterwards, read straight from PostgreSQL and Kafka: every run
completed, each node that ran succeeded exactly once in its run's log, every log is numbered 1..n,
no run completed twice (not in the log, not on ``runs.events``), and no outbox row or timer is left.

``bench/orchestrator_crash.py`` runs the same drill longer (more runs, more kills)."""

from __future__ import annotations

import asyncio
import random
import signal
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from uuid import UUID

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from millrace_common.contracts.messages.run_events import RUN_EVENT, RunCompleted
from millrace_common.contracts.topics import RUNS_EVENTS, Namespace
from sqlalchemy import Engine, create_engine, text

from tests.support.api import provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.kafka import kafka_client
from tests.support.processes import System

pytestmark = pytest.mark.e2e

RUNS = 200
KILLS = 3
WAITING_NODE = "pause"
QUICK_NODE = "tag"
NODES = ("start", "vars", "check", WAITING_NODE, QUICK_NODE, "done")
# Log rows a run writes: 9 on the quick branch, 12 through the delay (its timer is scheduled and fired).
EVENTS_PER_RUN = 10


def crash_workflow(runs: int) -> dict:
    """``set -> condition`` then, for half the runs, a one-second delay (so runs are in flight across a
    kill: their timers are durable rows) and for the other half another ``set``; both join at ``end``."""

    def node(node_id: str, node_type: str, y: int, **data: object) -> dict:
        position = {"x": 0, "y": y}
        return {"id": node_id, "type": node_type, "position": position, "data": {"name": node_id, **data}}

    def edge(source: str, target: str, handle: str | None = None) -> dict:
        built = {"id": f"{source}->{target}", "source": source, "target": target}
        return built | ({"sourceHandle": handle} if handle else {})

    first_half = {"field": "vars.n", "operator": "less_than", "value": runs // 2}
    return {
        "nodes": [
            node("start", "trigger", 0, kind="manual"),
            node("vars", "set", 100, variables={"n": "{{ trigger.n }}"}),
            node("check", "condition", 200, condition=first_half),
            node(WAITING_NODE, "wait_delay", 300, duration_seconds=1),
            node(QUICK_NODE, "set", 300, variables={"path": "quick"}),
            node("done", "end", 400, output={"n": "{{ vars.n }}"}),
        ],
        "edges": [
            edge("start", "vars"),
            edge("vars", "check"),
            edge("check", WAITING_NODE, "true"),
            edge("check", QUICK_NODE, "false"),
            edge(WAITING_NODE, "done"),
            edge(QUICK_NODE, "done"),
        ],
        "settings": {"max_executions_per_hour": 1_000_000},
    }


# -- the drill ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kill:
    """One SIGKILL: when (seconds into the drill, and wall-clock time), how far the log had got, how long
    the restart took (until the new process answered ``/readyz``)."""

    at_seconds: float
    at_time: float
    log_rows_at_kill: int
    exit_code: int
    restart_seconds: float


@dataclass
class CrashDrill:
    """Starts runs through the API in waves and SIGKILLs the orchestrator while it works through each."""

    system: System
    api: httpx.Client
    workflow_id: str
    database: Engine
    rng: random.Random
    kills: list[Kill] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)

    def run(self, runs: int, kills: int, *, posters: int = 8) -> list[UUID]:
        waves = [range(i, runs, kills + 1) for i in range(kills + 1)]
        with ThreadPoolExecutor(posters) as pool:
            rows_before = log_rows(self.database)
            posted = [pool.map(self.start_run, waves[0])]  # submitted at once; a kill may come mid-wave
            for number, wave in enumerate(waves[:kills]):
                # A random moment inside the wave's work: once the log has grown by a random share of it.
                target = rows_before + max(1, int(self.rng.uniform(0.1, 0.9) * len(wave) * EVENTS_PER_RUN))
                self.wait_for(lambda target=target: log_rows(self.database) >= target)
                killed = self.kill()
                # The next wave goes out while the orchestrator restarts, so it finds work waiting.
                posted.append(pool.map(self.start_run, waves[number + 1]))
                self.restart(killed)
                rows_before = killed.log_rows_at_kill
            return [run_id for wave in posted for run_id in wave]

    def start_run(self, n: int) -> UUID:
        answer = self.api.post(f"/api/v1/workflows/{self.workflow_id}/runs", json={"input": {"n": n}})
        assert answer.status_code == 202, answer.text
        return UUID(answer.json()["run_id"])

    def wait_for(self, condition: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"no progress in {timeout} s:\n{self.orchestrator_log()}"
            time.sleep(0.005)

    def kill(self) -> Kill:
        """SIGKILL the orchestrator (its log is kept aside); the kill, not yet restarted."""
        process = self.system.services["orchestrator"]
        at, at_time = time.monotonic() - self.started, time.time()
        exit_code = self.system.stop("orchestrator", signal.SIGKILL)
        process.log_path.rename(process.log_path.with_suffix(f".kill{len(self.kills) + 1}.log"))
        return Kill(at, at_time, log_rows(self.database), exit_code, restart_seconds=0.0)

    def restart(self, kill: Kill) -> None:
        restarting = time.monotonic()
        self.system.start(("orchestrator",))
        self.kills.append(replace(kill, restart_seconds=time.monotonic() - restarting))

    def orchestrator_log(self) -> str:
        service = self.system.services.get("orchestrator")
        return service.log() if service else "(not running)"


def log_rows(database: Engine) -> int:
    with database.connect() as connection:
        return connection.execute(text("select count(*) from run_events")).scalar_one()


def wait_until_finished(database: Engine, run_ids: Sequence[UUID], timeout: float) -> dict[str, int]:
    """Wait while runs make progress (a stall longer than ``timeout`` fails); the final status counts."""
    progress, stalled_since = -1, time.monotonic()
    while True:
        with database.connect() as connection:
            statuses = dict(
                connection.execute(
                    text("select status, count(*) from runs where run_id = any(:ids) group by status"),
                    {"ids": list(run_ids)},
                ).all()
            )
            rows = connection.execute(text("select count(*) from run_events")).scalar_one()
        if sum(statuses.values()) == len(run_ids) and "running" not in statuses:
            return statuses
        if rows != progress:
            progress, stalled_since = rows, time.monotonic()
        elif time.monotonic() - stalled_since > timeout:
            return statuses
        time.sleep(0.2)


def wait_for_empty(database: Engine, table: str, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while True:
        with database.connect() as connection:
            left = connection.execute(text(f"select count(*) from {table}")).scalar_one()
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


# -- what must hold afterwards -----------------------------------------------------------------------


@dataclass(frozen=True)
class LogFindings:
    """What is wrong with the runs' logs (empty lists when nothing is), and the completion event ids."""

    runs: int
    events: int
    gaps: list[str]
    node_successes: list[str]
    completions: list[str]
    completion_ids: dict[UUID, UUID]

    @property
    def problems(self) -> list[str]:
        return self.gaps + self.node_successes + self.completions


def examine_logs(database: Engine, run_ids: Sequence[UUID]) -> LogFindings:
    """Read every run's log: seq 1..n without gaps; exactly one ``node.succeeded`` per node that ran and
    one ``node.skipped`` per node that did not; exactly one ``run.completed``, the last row."""
    with database.connect() as connection:
        rows = connection.execute(
            text(
                "select run_id, seq, type, payload->>'node_id' as node_id, event_id from run_events"
                " where run_id = any(:ids) order by run_id, seq"
            ),
            {"ids": list(run_ids)},
        ).all()
    by_run: dict[UUID, list] = defaultdict(list)
    for row in rows:
        by_run[row.run_id].append(row)
    gaps, successes, completions, completion_ids = [], [], [], {}
    for run_id in run_ids:
        log = by_run.get(run_id, [])
        if [row.seq for row in log] != list(range(1, len(log) + 1)):
            gaps.append(f"{run_id}: seq {[row.seq for row in log]}")
        succeeded = Counter(row.node_id for row in log if row.type == "node.succeeded")
        skipped = Counter(row.node_id for row in log if row.type == "node.skipped")
        if any(count != 1 for count in succeeded.values()) or set(succeeded) | set(skipped) != set(NODES):
            successes.append(f"{run_id}: succeeded {dict(succeeded)}, skipped {dict(skipped)}")
        finished = [row for row in log if row.type.startswith("run.") and row.type != "run.started"]
        if [row.type for row in finished] != ["run.completed"] or log[-1].type != "run.completed":
            completions.append(f"{run_id}: {[row.type for row in finished]}")
        else:
            completion_ids[run_id] = finished[0].event_id
    return LogFindings(len(run_ids), len(rows), gaps, successes, completions, completion_ids)


async def published_completions(infra: Infra, namespace: str) -> dict[UUID, list[UUID]]:
    """Every ``run.completed`` on ``runs.events`` (from the start of each partition to its end), by run:
    the message ids as delivered, so a republished message shows as the same id twice."""
    topic = Namespace(namespace).topic(RUNS_EVENTS)
    consumer = AIOKafkaConsumer(**kafka_client(infra.kafka_bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(RUNS_EVENTS.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: dict[UUID, list[UUID]] = defaultdict(list)
        while [p for p in partitions if await consumer.position(p) < ends[p]]:
            batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
            for records in batch.values():
                for record in records:
                    event = RUN_EVENT.validate_json(record.value)
                    if isinstance(event, RunCompleted):
                        found[event.run_id].append(event.message_id)
        return found
    finally:
        await consumer.stop()


def completed_twice(published: dict[UUID, list[UUID]], logged: dict[UUID, UUID]) -> list[str]:
    """Runs whose completion was published under more than one id, or under another id than the log's."""
    return [
        f"{run_id}: published {ids}, logged {logged.get(run_id)}"
        for run_id, ids in published.items()
        if set(ids) != {logged.get(run_id)}
    ] + [f"{run_id}: completion never published" for run_id in logged if run_id not in published]


@contextmanager
def schema_engine(infra: Infra, namespace: str) -> Iterator[Engine]:
    engine = create_engine(infra.database_url, connect_args={"options": f"-csearch_path={namespace}"})
    try:
        yield engine
    finally:
        engine.dispose()


def create_active_workflow(api: httpx.Client, runs: int) -> str:
    created = api.post("/api/v1/workflows", json={"name": "Crash drill", "definition": crash_workflow(runs)})
    assert created.status_code == 201, created.text
    workflow_id = created.json()["id"]
    activated = api.post(f"/api/v1/workflows/{workflow_id}/activate", json={})
    assert activated.status_code == 200, activated.text
    return workflow_id


# -- the test ----------------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_every_run_completes_exactly_once_though_the_orchestrator_is_killed_at_random_moments(
    system: System, tenant: str
):
    seed = uuid.uuid4().int % 1_000_000
    system.start(("gateway", "orchestrator"))
    api = signed_in(system.url("gateway"), provision_tenant(system.infra, system.namespace, tenant))
    workflow_id = create_active_workflow(api, RUNS)

    with schema_engine(system.infra, system.namespace) as database:
        drill = CrashDrill(system, api, workflow_id, database, random.Random(seed))
        run_ids = drill.run(RUNS, KILLS)
        statuses = wait_until_finished(database, run_ids, timeout=45)
        context = f"seed {seed}, kills {drill.kills}\n{drill.orchestrator_log()}"

        assert len(set(run_ids)) == RUNS
        assert [kill.exit_code for kill in drill.kills] == [-signal.SIGKILL] * KILLS
        assert statuses == {"completed": RUNS}, context
        findings = examine_logs(database, run_ids)
        assert findings.problems == [], context
        assert wait_for_empty(database, "outbox") == 0, context
        assert wait_for_empty(database, "timers") == 0, context

    published = asyncio.run(published_completions(system.infra, system.namespace))
    assert completed_twice(published, findings.completion_ids) == [], context
