"""The orchestrator as a real process over Kafka and PostgreSQL: completed runs per second of a
``set -> condition -> end`` workflow started by StartRun commands at full speed, p50/p99
start-to-completion latency at full speed and at half the measured rate, and run-log events per
second through the shell. Target: at least 500 runs/s, and p50 under 30 ms at half that load.

Latency is measured from just before this process hands a StartRun to its Kafka producer to when it
reads the run's ``run.completed`` back from ``runs.events`` (both Kafka hops, the orchestrator's
transaction and its outbox relay), and split at three moments: "decided" (the completion event's
``occurred_at``, when the orchestrator read its clock for the decision), "appended" (the log row's
``recorded_at``, before the projections and the commit) and "published" (the Kafka record's create
time, set by the relay's producer).

``--for-each`` also times for_each runs (1,000 and 10,000 items, max_concurrency 50) through the
shell: a ``set`` body (one decision writes the whole loop) and an ``http_request`` body answered at
once by a stand-in runner in this process (a message per item).

    uv run --frozen python -m bench.orchestrator_shell [--runs 5000] [--half-seconds 10]
        [--paced-rate R] [--for-each] [--profile] [--env NAME=VALUE ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from uuid import UUID

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from millrace_common.contracts.messages.node_commands import NODE_COMMAND, NodeSucceededResult
from millrace_common.contracts.messages.run_commands import StartRun, TriggerData
from millrace_common.contracts.topics import (
    NODES_READY_HTTP,
    NODES_RESULTS,
    RUNS_COMMANDS,
    RUNS_EVENTS,
    Namespace,
)
from millrace_common.platform import fetcher_mend
from sqlalchemy import Engine, text

from bench.common import (
    ROOT,
    Figure,
    bench_namespace,
    for_each_workflow,
    infra_from_env,
    insert_workflow,
    machine,
    median,
    percentile,
    print_figures,
    schema_engine,
    set_condition_end,
)
from tests.support.infra import Infra
from tests.support.kafka import kafka_client
from tests.support.processes import free_port

TENANT = "bench"
STAGES = (("sent", "decided"), ("decided", "appended"), ("appended", "published"), ("published", "received"))
LOGS = ROOT / "test-artifacts"


# -- the orchestrator process -------------------------------------------------------------------------


@dataclass
class OrchestratorProcess:
    process: subprocess.Popen
    url: str
    log_path: Path

    def cpu_seconds(self) -> float:
        """User + system CPU the process has used so far (from /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def batches(self) -> dict[str, float]:
        """Batches written so far, by path (``millrace_orchestrator_batches_total``)."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        found = re.finditer(
            r'^millrace_orchestrator_batches_total\{path="(\w+)"\} (\S+)$', text, re.MULTILINE
        )
        return {m[1]: float(m[2]) for m in found}


@contextmanager
def orchestrator(
    infra: Infra, namespace: str, *, profile_to: Path | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[OrchestratorProcess]:
    """``millrace-orchestrator`` in the namespace (under cProfile when asked), stopped with SIGTERM."""
    LOGS.mkdir(exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        **infra.env(namespace),
        "MILLRACE_HTTP_PORT": str(port),
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }
    run = "from millrace_orchestrator.main import main\n"
    run += f"import cProfile\ncProfile.run('main()', {str(profile_to)!r})\n" if profile_to else "main()\n"
    log_path = LOGS / f"{namespace}-orchestrator.log"
    with open(log_path, "wb") as out:
        process = subprocess.Popen([sys.executable, "-c", run], env=env, stdout=out, stderr=subprocess.STDOUT)
    running = OrchestratorProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                tail = log_path.read_text()[-4000:]
                raise RuntimeError(f"the orchestrator exited with {process.returncode}:\n{tail}")
            try:
                if httpx.get(f"{running.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the orchestrator was not ready within 90 s")
            time.sleep(0.2)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- Kafka: StartRun out, run.completed back ------------------------------------------------------------


@dataclass
class Completions:
    """``run.completed`` events read from ``runs.events``: when each arrived here, its own time, and when
    the orchestrator's relay handed it to Kafka (the record's create time)."""

    received: dict[UUID, float] = field(default_factory=dict)
    occurred: dict[UUID, float] = field(default_factory=dict)
    published: dict[UUID, float] = field(default_factory=dict)
    events_seen: int = 0

    async def follow(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batch = await consumer.getmany(timeout_ms=20, max_records=20_000)
            now = time.time()
            for records in batch.values():
                self.events_seen += len(records)
                for record in records:
                    if b'"run.completed"' in record.value:
                        event = json.loads(record.value)
                        run_id = UUID(event["run_id"])
                        self.received.setdefault(run_id, now)
                        occurred = datetime.fromisoformat(event["occurred_at"]).timestamp()
                        self.occurred.setdefault(run_id, occurred)
                        self.published.setdefault(run_id, record.timestamp / 1000)

    async def wait_for(self, run_ids: list[UUID], stall_seconds: float = 60) -> None:
        seen, since = -1, time.monotonic()
        while True:
            done = sum(1 for r in run_ids if r in self.received)
            if done == len(run_ids):
                return
            if done != seen:
                seen, since = done, time.monotonic()
            elif time.monotonic() - since > stall_seconds:
                raise RuntimeError(f"{done} of {len(run_ids)} runs completed; none more in {stall_seconds} s")
            await asyncio.sleep(0.05)


@dataclass
class Pass:
    """One pass; per run, the moments its completion went through (epoch seconds): sent here, decided
    (the completion's ``occurred_at``), appended (its ``recorded_at`` row time, before the commit),
    published (Kafka create time), received here."""

    label: str
    runs: int
    seconds: float
    stages: dict[str, list[float]]
    log_events: int
    orchestrator_cpu: float
    batches: dict[str, float]

    def ms(self, start: str, end: str) -> list[float]:
        return [(b - a) * 1000 for a, b in zip(self.stages[start], self.stages[end], strict=True)]

    @property
    def observed_ms(self) -> list[float]:
        return self.ms("sent", "received")

    @property
    def runs_per_second(self) -> float:
        return self.runs / self.seconds


class RunStarter:
    """Produces StartRun commands for one workflow straight to ``runs.commands``."""

    def __init__(self, producer: AIOKafkaProducer, namespace: Namespace, workflow: tuple[UUID, int]) -> None:
        self._producer = producer
        self._topic = namespace.topic(RUNS_COMMANDS)
        self._workflow = workflow
        self.sent_at: dict[UUID, float] = {}

    def command(self, n: int, data: dict | None = None) -> StartRun:
        run_id = uuid.uuid4()
        return StartRun(
            tenant_id=TENANT,
            correlation_id=run_id,
            run_id=run_id,
            workflow_id=self._workflow[0],
            workflow_version=self._workflow[1],
            trigger=TriggerData(kind="manual", data=data if data is not None else {"n": n}),
            idempotency_key=f"bench:{run_id}",
        )

    async def send(self, command: StartRun) -> asyncio.Future:
        payload = command.to_bytes()
        self.sent_at[command.run_id] = time.time()
        return await self._producer.send(self._topic, payload, key=str(command.run_id).encode())

    async def at_full_speed(self, runs: int) -> list[UUID]:
        commands = [self.command(n) for n in range(runs)]
        pending = [await self.send(c) for c in commands]
        await asyncio.gather(*pending)
        return [c.run_id for c in commands]

    async def at_rate(self, runs: int, per_second: float) -> list[UUID]:
        began, ids, pending = time.monotonic(), [], []
        for n in range(runs):
            delay = began + n / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            command = self.command(n)
            pending.append(await self.send(command))
            ids.append(command.run_id)
        await asyncio.gather(*pending)
        return ids


def appended_at(database: Engine, run_ids: list[UUID]) -> dict[UUID, float]:
    with database.connect() as connection:
        rows = connection.execute(
            text(
                "select run_id, extract(epoch from recorded_at) as at from run_events"
                " where run_id = any(:ids) and type = 'run.completed'"
            ),
            {"ids": run_ids},
        ).all()
    return {row.run_id: float(row.at) for row in rows}


def log_events(database: Engine, run_ids: list[UUID]) -> int:
    with database.connect() as connection:
        return connection.execute(
            text("select count(*) from run_events where run_id = any(:ids)"), {"ids": run_ids}
        ).scalar_one()


async def measure(
    label: str,
    starter: RunStarter,
    completions: Completions,
    database: Engine,
    process: OrchestratorProcess,
    runs: int,
    rate: float | None,
) -> Pass:
    cpu_before = process.cpu_seconds()
    batches_before = process.batches()
    began = time.time()
    run_ids = await (starter.at_rate(runs, rate) if rate else starter.at_full_speed(runs))
    await completions.wait_for(run_ids)
    finished = max(completions.received[r] for r in run_ids)
    cpu = process.cpu_seconds() - cpu_before
    batches = {path: n - batches_before.get(path, 0) for path, n in process.batches().items()}
    appended = appended_at(database, run_ids)
    stages = {
        "sent": [starter.sent_at[r] for r in run_ids],
        "decided": [completions.occurred[r] for r in run_ids],
        "appended": [appended[r] for r in run_ids],
        "published": [completions.published[r] for r in run_ids],
        "received": [completions.received[r] for r in run_ids],
    }
    return Pass(label, runs, finished - began, stages, log_events(database, run_ids), cpu, batches)


def pass_figures(result: Pass, target: str = "") -> list[Figure]:
    return [
        Figure(f"{result.label}: runs", result.runs, "", f"in {result.seconds:.2f} s"),
        Figure(f"{result.label}: completed runs/s", result.runs_per_second, "runs/s", target),
        Figure(
            f"{result.label}: run-log events/s",
            result.log_events / result.seconds,
            "events/s",
            f"{result.log_events / result.runs:.0f} a run",
        ),
        Figure(f"{result.label}: latency p50", median(result.observed_ms), "ms", "sent -> completion read"),
        Figure(f"{result.label}: latency p99", percentile(result.observed_ms, 0.99), "ms"),
        Figure(
            f"{result.label}: p50 by stage",
            " / ".join(f"{median(result.ms(a, b)):.1f}" for a, b in STAGES),
            "ms",
            " / ".join(f"{a}->{b}" for a, b in STAGES),
        ),
        Figure(
            f"{result.label}: orchestrator CPU",
            result.orchestrator_cpu / result.seconds * 100,
            "% of a core",
            f"{result.orchestrator_cpu / result.runs * 1000:.2f} ms CPU a run",
        ),
        Figure(
            f"{result.label}: batches",
            sum(result.batches.values()),
            "",
            f"{result.runs / max(1.0, sum(result.batches.values())):.1f} runs a batch; "
            + ", ".join(f"{path} {n:,.0f}" for path, n in sorted(result.batches.items())),
        ),
    ]


# -- for_each through the shell -------------------------------------------------------------------------


async def stand_in_runner(infra: Infra, namespace: Namespace, producer: AIOKafkaProducer) -> None:
    """Answers every ``http_request`` ExecuteNode at once with a success, as a runner would."""
    consumer = AIOKafkaConsumer(
        namespace.topic(NODES_READY_HTTP),
        **kafka_client(infra.kafka_bootstrap),
        group_id=f"{namespace.prefix}.bench-runner",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=5,
    )
    await consumer.start()
    fetcher_mend.mend(consumer)
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=20, max_records=5_000)
            for records in batch.values():
                for record in records:
                    command = NODE_COMMAND.validate_json(record.value)
                    result = NodeSucceededResult(
                        tenant_id=command.tenant_id,
                        correlation_id=command.run_id,
                        causation_id=command.message_id,
                        run_id=command.run_id,
                        node_id=command.node_id,
                        attempt=command.attempt,
                        output={"status": 200},
                        duration_ms=0.1,
                    )
                    await producer.send(namespace.topic(NODES_RESULTS), result.to_bytes(), key=record.key)
    finally:
        await consumer.stop()


async def for_each_figures(
    database: Engine,
    producer: AIOKafkaProducer,
    namespace: Namespace,
    completions: Completions,
    process: OrchestratorProcess,
    sizes: dict[str, list[int]],
    timeout: float,
) -> list[Figure]:
    figures = []
    for body, item_counts in sizes.items():
        definition = for_each_workflow(body, max_concurrency=50)
        workflow = insert_workflow(database, TENANT, definition, name=f"for_each {body}")
        starter = RunStarter(producer, namespace, workflow)
        took: dict[int, float] = {}
        for items in item_counts:
            command = starter.command(0, {"items": list(range(items))})
            cpu_before = process.cpu_seconds()
            began = time.time()
            await asyncio.gather(await starter.send(command))
            try:
                await completions.wait_for([command.run_id], stall_seconds=timeout)
            except RuntimeError:
                what = f"for_each {items:,} items, {body} body"
                figures.append(Figure(what, "gave up", "", f"> {timeout:.0f} s"))
                print(f"  {figures[-1].what}: not done in {timeout:.0f} s", flush=True)
                continue
            took[items] = completions.received[command.run_id] - began
            cpu = process.cpu_seconds() - cpu_before
            events = log_events(database, [command.run_id])
            what = f"for_each {items:,} items, {body} body"
            note = f"{events:,} events; orchestrator CPU {cpu / items * 1000:.2f} ms an item"
            figures.append(Figure(what, took[items], "s", note))
            print(f"  {figures[-1].what}: {took[items]:.1f} s", flush=True)
        if 1_000 in took and 10_000 in took:
            ratio = took[10_000] / took[1_000]
            verdict = "meets the target (<= 12x)" if ratio <= 12 else "MISSES the target (<= 12x)"
            figures.append(Figure("  10,000 / 1,000", ratio, "x", verdict))
    return figures


# -- the bench -------------------------------------------------------------------------------------------


async def run_figures(
    options: argparse.Namespace,
    producer: AIOKafkaProducer,
    namespace: Namespace,
    completions: Completions,
    database: Engine,
    process: OrchestratorProcess,
) -> list[Figure]:
    warm_workflow = insert_workflow(database, TENANT, set_condition_end(), name="warm-up")
    warm = RunStarter(producer, namespace, warm_workflow)
    await measure("warm-up", warm, completions, database, process, 200, None)
    flat_out = RunStarter(producer, namespace, insert_workflow(database, TENANT, set_condition_end()))
    full = await measure("full speed", flat_out, completions, database, process, options.runs, None)
    figures = pass_figures(full, "target >= 500 runs/s")
    rate = options.paced_rate or full.runs_per_second / 2
    label = f"paced ({rate:,.0f}/s)" if options.paced_rate else f"half ({rate:,.0f}/s)"
    paced = RunStarter(producer, namespace, insert_workflow(database, TENANT, set_condition_end()))
    paced_runs = max(200, int(rate * options.half_seconds))
    half = await measure(label, paced, completions, database, process, paced_runs, rate)
    figures += pass_figures(half)
    p50 = median(half.observed_ms)
    verdict = "meets the target (< 30 ms)" if p50 < 30 else "MISSES the target (< 30 ms)"
    figures.append(Figure(f"p50 at {label}", p50, "ms", verdict))
    return figures


async def bench(
    options: argparse.Namespace, infra: Infra, prefix: str, database: Engine, profile_to: Path | None
) -> None:
    namespace = Namespace(prefix)
    producer = AIOKafkaProducer(
        **kafka_client(infra.kafka_bootstrap), acks="all", enable_idempotence=True, linger_ms=1
    )
    consumer = AIOKafkaConsumer(
        **kafka_client(infra.kafka_bootstrap), enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await producer.start()
    await consumer.start()
    fetcher_mend.mend(consumer)
    follower = runner = None
    try:
        events = namespace.topic(RUNS_EVENTS)
        consumer.assign([TopicPartition(events, p) for p in range(RUNS_EVENTS.partitions)])
        completions = Completions()
        follower = asyncio.create_task(completions.follow(consumer))
        with orchestrator(infra, prefix, profile_to=profile_to, extra_env=dict(options.env)) as process:
            if options.runs > 0:
                print_figures(
                    "orchestrator shell: trigger -> set -> condition -> end, StartRun straight to Kafka",
                    await run_figures(options, producer, namespace, completions, database, process),
                )
            if options.for_each:
                runner = asyncio.create_task(stand_in_runner(infra, namespace, producer))
                sizes = {"set": options.set_items, "http": options.http_items}
                figures = await for_each_figures(
                    database, producer, namespace, completions, process, sizes, options.for_each_timeout
                )
                print_figures("orchestrator shell: for_each, max_concurrency 50", figures)
    finally:
        for task in (follower, runner):
            if task is not None:
                task.cancel()
        await consumer.stop()
        await producer.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5_000, help="runs at full speed (0: no run passes)")
    parser.add_argument("--half-seconds", type=float, default=10.0, help="how long the half-rate pass sends")
    parser.add_argument("--paced-rate", type=float, default=None, help="runs/s when paced (default: half)")
    parser.add_argument("--for-each", action="store_true", help="also time for_each runs through the shell")
    parser.add_argument("--set-items", type=int, nargs="*", default=[1_000, 10_000], help="items, set body")
    parser.add_argument(
        "--http-items", type=int, nargs="*", default=[1_000, 10_000], help="item counts, runner-node body"
    )
    parser.add_argument("--for-each-timeout", type=float, default=1800, help="seconds to wait for one run")
    parser.add_argument("--profile", action="store_true", help="run the orchestrator under cProfile")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        type=lambda pair: tuple(pair.split("=", 1)),
        metavar="NAME=VALUE",
        help="extra environment for the orchestrator, e.g. MILLRACE_KAFKA_FETCH_MAX_WAIT_MS=500",
    )
    options = parser.parse_args()
    infra = infra_from_env()
    print(f"orchestrator shell on {machine()}; Kafka {infra.kafka_bootstrap}")
    for name, value in options.env:
        print(f"  orchestrator environment: {name}={value}")
    profile_to = Path(f"/tmp/orchestrator-{uuid.uuid4().hex[:8]}.prof") if options.profile else None
    with bench_namespace(infra, "shell") as prefix, schema_engine(infra, prefix) as database:
        asyncio.run(bench(options, infra, prefix, database, profile_to))
    if profile_to and profile_to.exists():
        print(f"\nwhere the orchestrator's time went (cProfile, {profile_to}):")
        pstats.Stats(str(profile_to)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
