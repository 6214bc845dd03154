"""Live runs while the run log is pruned: loads about a million run events of finished runs that ended
60 days ago (COPY), starts the orchestrator, then measures start-to-completion latency (p50/p99) of
``set -> condition -> end`` runs sent at a steady rate, first with nothing else going on, then while
the orchestrator's retention pass (the same use case its clock runs, built from the same settings)
deletes every old run with its events. Prints rows deleted per second and how long the pass took.

    uv run --frozen python -m bench.retention_prune [--old-runs 50000] [--events-per-run 20]
        [--rate 50] [--seconds 20] [--batch-runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.topics import RUNS_EVENTS, Namespace
from millrace_common.platform.pg import DirectConnections, conninfo
from millrace_orchestrator.bootstrap import run_retention
from millrace_orchestrator.settings import OrchestratorSettings
from sqlalchemy import Engine, text

from bench.common import (
    Figure,
    bench_namespace,
    infra_from_env,
    insert_workflow,
    machine,
    median,
    percentile,
    print_figures,
    schema_engine,
    set_condition_end,
)
from bench.orchestrator_shell import TENANT, Completions, RunStarter, orchestrator
from tests.support.infra import Infra
from tests.support.kafka import kafka_client

OLD_TENANT = "bench-old"


def load_old_runs(infra: Infra, namespace: str, runs: int, events_per_run: int) -> int:
    """Finished runs of 60 days ago with their events and a node row per event, written with COPY."""
    settings = OrchestratorSettings(database_url=infra.database_url, namespace=namespace)
    ended = utc_now() - timedelta(days=60)
    workflow_id = uuid.uuid4()
    written = 0
    with psycopg.connect(conninfo(settings), options=f"-csearch_path={namespace}") as connection:
        with connection.cursor() as cursor:
            with cursor.copy(
                "copy runs (run_id, tenant_id, workflow_id, workflow_version, status, trigger, started_at,"
                " finished_at, last_seq) from stdin"
            ) as copy:
                run_ids = [uuid.uuid4() for _ in range(runs)]
                for run_id in run_ids:
                    copy.write_row(
                        (run_id, OLD_TENANT, workflow_id, 1, "completed", "{}", ended, ended, events_per_run)
                    )
            with cursor.copy(
                "copy run_events (run_id, seq, event_id, type, payload, recorded_at) from stdin"
            ) as copy:
                for run_id in run_ids:
                    for seq in range(1, events_per_run + 1):
                        payload = {
                            "type": "node.succeeded",
                            "run_id": str(run_id),
                            "seq": seq,
                            "node_id": f"node{seq}",
                            "output": {"value": seq, "text": "x" * 120},
                        }
                        copy.write_row(
                            (run_id, seq, uuid.uuid4(), "node.succeeded", json.dumps(payload), ended)
                        )
                        written += 1
            with cursor.copy(
                "copy node_executions (run_id, node_id, node_type, status, attempts) from stdin"
            ) as copy:
                for run_id in run_ids:
                    for n in range(5):
                        copy.write_row((run_id, f"node{n}", "set", "succeeded", 1))
        connection.commit()
        connection.execute(f'analyze "{namespace}".runs')
        connection.execute(f'analyze "{namespace}".run_events')
    return written


def old_runs_left(database: Engine) -> int:
    with database.connect() as connection:
        query = text("select count(*) from runs where tenant_id = :t")
        return connection.execute(query, {"t": OLD_TENANT}).scalar_one()


async def paced_latencies(
    starter: RunStarter, completions: Completions, rate: float, seconds: float
) -> list[float]:
    ids = await starter.at_rate(int(rate * seconds), rate)
    await completions.wait_for(ids)
    return [(completions.received[r] - starter.sent_at[r]) * 1000 for r in ids]


async def bench(options: argparse.Namespace, infra: Infra, prefix: str, database: Engine) -> list[Figure]:
    namespace = Namespace(prefix)
    producer = AIOKafkaProducer(
        **kafka_client(infra.kafka_bootstrap), acks="all", enable_idempotence=True, linger_ms=1
    )
    consumer = AIOKafkaConsumer(
        **kafka_client(infra.kafka_bootstrap), enable_auto_commit=False, fetch_max_wait_ms=5
    )
    await producer.start()
    await consumer.start()
    follower = None
    figures: list[Figure] = []
    # The orchestrator process keeps every run (its own pass would prune the old ones at start); the
    # pass measured here is this process's, built as the orchestrator builds it.
    env = {"MILLRACE_RUN_RETENTION_DAYS": "3650"}
    try:
        consumer.assign(
            [TopicPartition(namespace.topic(RUNS_EVENTS), p) for p in range(RUNS_EVENTS.partitions)]
        )
        completions = Completions()
        follower = asyncio.create_task(completions.follow(consumer))
        with orchestrator(infra, prefix, extra_env=env):
            starter = RunStarter(producer, namespace, insert_workflow(database, TENANT, set_condition_end()))
            await paced_latencies(starter, completions, options.rate, 3)  # warm-up
            before = await paced_latencies(starter, completions, options.rate, options.seconds)
            settings = OrchestratorSettings(
                database_url=infra.database_url,
                namespace=prefix,
                retention_batch_runs=options.batch_runs,
            )
            connections = DirectConnections(settings, size=1)
            retention = run_retention(settings, connections)
            began = time.monotonic()
            pruning = asyncio.create_task(retention.prune())
            during: list[float] = []
            while not pruning.done():
                during += await paced_latencies(starter, completions, options.rate, 5)
            pruned = await pruning
            took = time.monotonic() - began
            await connections.close()
            after = await paced_latencies(starter, completions, options.rate, options.seconds)
    finally:
        if follower is not None:
            follower.cancel()
        await consumer.stop()
        await producer.stop()
    events = options.old_runs * options.events_per_run
    figures += [
        Figure("before pruning: p50", median(before), "ms", f"{len(before):,} runs at {options.rate:g}/s"),
        Figure("before pruning: p99", percentile(before, 0.99), "ms"),
        Figure("while pruning: p50", median(during), "ms", f"{len(during):,} runs at {options.rate:g}/s"),
        Figure("while pruning: p99", percentile(during, 0.99), "ms"),
        Figure("after pruning: p50", median(after), "ms"),
        Figure("after pruning: p99", percentile(after, 0.99), "ms"),
        Figure("pruned runs", pruned.runs, "", f"{options.batch_runs} a statement"),
        Figure("pass took", took, "s", f"{events / took:,.0f} events/s, {pruned.runs / took:,.0f} runs/s"),
        Figure("old runs left", old_runs_left(database), "", "0: every old run was pruned"),
    ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--old-runs", type=int, default=50_000)
    parser.add_argument("--events-per-run", type=int, default=20)
    parser.add_argument("--rate", type=float, default=50, help="live runs per second")
    parser.add_argument("--seconds", type=float, default=20, help="how long each measured pass sends")
    parser.add_argument("--batch-runs", type=int, default=50, help="runs per delete statement")
    options = parser.parse_args()
    infra = infra_from_env()
    print(f"retention under load on {machine()}; Kafka {infra.kafka_bootstrap}")
    with bench_namespace(infra, "prune") as prefix, schema_engine(infra, prefix) as database:
        began = time.monotonic()
        events = load_old_runs(infra, prefix, options.old_runs, options.events_per_run)
        took = time.monotonic() - began
        print(f"loaded {options.old_runs:,} finished runs, {events:,} events in {took:.0f} s", flush=True)
        figures = asyncio.run(bench(options, infra, prefix, database))
    print_figures("live runs (trigger -> set -> condition -> end) before, while and after pruning", figures)


if __name__ == "__main__":
    main()
