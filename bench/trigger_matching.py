"""Record events per second through the trigger service, with 10,000 active workflows across 100
tenants and 1% of events matching.

    uv run --frozen python bench/trigger_matching.py [--events 100000] [--match-rate 0.01]

Runs against the Kafka and PostgreSQL of ``MILLRACE_KAFKA_BOOTSTRAP`` / ``MILLRACE_DATABASE_URL``
(default: the ``dev`` profile), in a namespace of its own that it removes afterwards.

Each tenant has 100 workflows, one per pipeline: 40 ``record_created`` and 30 ``record_updated``
with a condition on the amount, 30 ``field_changed`` watching the status. Every event lands in a
pipeline that has a workflow, so every event is matched against a real candidate (the index lookup,
the condition or the field diff, and the last-seen state of records in watched pipelines); 1% of them
satisfy it. The backlog of events is written first, then the trigger service is started as a real
process and timed until it has handled every event; the StartRuns on ``runs.commands`` are counted.
Then a latency phase sends matching events one at a time and times each until its StartRun is out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from millrace_common.contracts.messages.records import RecordCreated, RecordUpdated
from millrace_common.contracts.topics import RECORDS_EVENTS, RUNS_COMMANDS, Namespace, every_topic
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.platform import fetcher_mend
from millrace_common.platform.migrate import upgrade
from millrace_common.platform.settings import ServiceSettings
from millrace_common.platform.tables import active_triggers, workflow_triggers
from millrace_common.platform.topic_admin import ensure_topics
from millrace_gateway.adapters.trigger_index import trigger_index_rows
from sqlalchemy import Engine, create_engine, insert, text

from tests.support.kafka import kafka_client

TENANTS = 100
WORKFLOWS_PER_TENANT = 100
RECORDS_PER_PIPELINE = 50


def kind_of(index: int) -> str:
    return "record_created" if index < 40 else "record_updated" if index < 70 else "field_changed"


def definition(kind: str, pipeline: str) -> WorkflowDefinition:
    trigger: dict = {"name": "When", "kind": kind, "pipeline_ids": [pipeline]}
    if kind == "field_changed":
        trigger["fields"] = [{"field": "status", "to": ["won"]}]
    else:
        trigger["conditions"] = {
            "field": "trigger.record.data.amount",
            "operator": "greater_than_or_equals",
            "value": 1000,
        }
    return WorkflowDefinition.model_validate(
        {
            "nodes": [
                {"id": "when", "type": "trigger", "position": {"x": 0, "y": 0}, "data": trigger},
                {"id": "done", "type": "end", "position": {"x": 0, "y": 100}, "data": {"name": "Done"}},
            ],
            "edges": [{"id": "e", "source": "when", "target": "done"}],
            "settings": {"max_executions_per_hour": 1_000_000},
        }
    )


def activate_workflows(settings: ServiceSettings) -> None:
    engine = create_engine(
        settings.database_url, connect_args={"options": f"-csearch_path={settings.database_schema}"}
    )
    index, configs = [], []
    now = datetime.now(UTC)
    for t in range(TENANTS):
        for w in range(WORKFLOWS_PER_TENANT):
            rows, config = trigger_index_rows(
                f"tenant-{t}", uuid.uuid4(), 1, definition(kind_of(w), f"p{w}"), now
            )
            index.extend(rows)
            configs.append(config)
    with engine.begin() as connection:
        connection.execute(insert(active_triggers), index)
        connection.execute(insert(workflow_triggers), configs)
    engine.dispose()


def events(count: int, match_rate: float, rng: random.Random) -> tuple[list[tuple[bytes, bytes]], int]:
    """``count`` events over random tenants and pipelines; returns them (key, value) and how many match."""
    produced, matches = [], 0
    for _ in range(count):
        tenant, w = f"tenant-{rng.randrange(TENANTS)}", rng.randrange(WORKFLOWS_PER_TENANT)
        record_id = f"r{w}-{rng.randrange(RECORDS_PER_PIPELINE)}"
        hit = rng.random() < match_rate
        matches += hit
        kind, pipeline = kind_of(w), f"p{w}"
        if kind == "record_created":
            event = RecordCreated(
                tenant_id=tenant,
                pipeline_id=pipeline,
                record_id=record_id,
                data={"amount": 5000 if hit else rng.randrange(999)},
            )
        elif kind == "record_updated":
            amount = 5000 if hit else rng.randrange(999)
            event = RecordUpdated(
                tenant_id=tenant,
                pipeline_id=pipeline,
                record_id=record_id,
                data={"amount": amount},
                old_data={"amount": 1},
            )
        else:
            status = "won" if hit else rng.choice(["open", "qualified", "lost"])
            event = RecordUpdated(
                tenant_id=tenant,
                pipeline_id=pipeline,
                record_id=record_id,
                data={"status": status, "amount": rng.randrange(999)},
                old_data={"status": "open", "amount": 1},
            )
        produced.append((record_id.encode(), event.to_bytes()))
    return produced, matches


async def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**kafka_client(bootstrap), linger_ms=5, max_batch_size=256 * 1024, acks="all")
    await producer.start()
    try:
        pending = [await producer.send(topic, value, key=key) for key, value in messages]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str, partitions: int) -> int:
    consumer = AIOKafkaConsumer(**kafka_client(bootstrap))
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return sum(ends.values())
    finally:
        await consumer.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def handled(engine: Engine, topic: str) -> int:
    with engine.connect() as connection:
        return connection.execute(
            text("select coalesce(sum(next_offset), 0)::bigint from consumer_positions where topic = :t"),
            {"t": topic},
        ).scalar_one()


async def latency(bootstrap: str, namespace: Namespace, samples: int) -> list[float]:
    """Seconds from sending one matching event to its StartRun being readable on runs.commands."""
    commands = namespace.topic(RUNS_COMMANDS)
    consumer = AIOKafkaConsumer(
        commands, **kafka_client(bootstrap), auto_offset_reset="latest", fetch_max_wait_ms=5
    )
    producer = AIOKafkaProducer(**kafka_client(bootstrap), linger_ms=0, acks="all")
    await consumer.start()
    fetcher_mend.mend(consumer)
    await producer.start()
    try:
        while not consumer.assignment():
            await asyncio.sleep(0.05)
        for tp in consumer.assignment():
            await consumer.seek_to_end(tp)
            await consumer.position(tp)
        timings = []
        for i in range(samples):
            event = RecordCreated(
                tenant_id="tenant-0", pipeline_id="p0", record_id=f"lat-{i}", data={"amount": 5000}
            )
            started = time.perf_counter()
            await producer.send_and_wait(
                namespace.topic(RECORDS_EVENTS), event.to_bytes(), key=event.record_id.encode()
            )
            seen = False
            while not seen:
                batch = await consumer.getmany(timeout_ms=2000)
                seen = any(str(event.message_id).encode() in r.value for rs in batch.values() for r in rs)
            timings.append(time.perf_counter() - started)
        return timings
    finally:
        await producer.stop()
        await consumer.stop()


def service_metrics(port: int) -> tuple[float, float]:
    """Batches the service handled for records.events, and the seconds they took in all."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        lines = answer.read().decode().splitlines()
    found = {"count": 0.0, "sum": 0.0}
    for line in lines:
        for suffix in found:
            if (
                line.startswith(f"millrace_consumer_batch_seconds_{suffix}{{")
                and 'topic="records.events"' in line
            ):
                found[suffix] = float(line.rsplit(" ", 1)[1])
    return found["count"], found["sum"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--match-rate", type=float, default=0.01)
    parser.add_argument("--instances", type=int, default=1, help="trigger service processes sharing the work")
    parser.add_argument("--latency-samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    namespace_name = f"bench{uuid.uuid4().hex[:10]}"
    base = ServiceSettings()
    settings = ServiceSettings(
        kafka_bootstrap=base.kafka_bootstrap, database_url=base.database_url, namespace=namespace_name
    )
    namespace = Namespace(namespace_name)
    engine = create_engine(settings.database_url, connect_args={"options": f"-csearch_path={namespace_name}"})
    services: list[tuple[subprocess.Popen, int]] = []
    print(f"Kafka {settings.kafka_bootstrap}, PostgreSQL {settings.database_url.rsplit('@', 1)[-1]}")
    try:
        upgrade(settings)
        asyncio.run(ensure_topics(settings, namespace))
        started = time.perf_counter()
        activate_workflows(settings)
        print(
            f"{TENANTS * WORKFLOWS_PER_TENANT} active workflows across {TENANTS} tenants "
            f"in {time.perf_counter() - started:.1f} s"
        )

        backlog, matches = events(args.events, args.match_rate, random.Random(args.seed))
        started = time.perf_counter()
        asyncio.run(produce(settings.kafka_bootstrap, namespace.topic(RECORDS_EVENTS), backlog))
        print(
            f"{len(backlog)} record events written in {time.perf_counter() - started:.1f} s "
            f"({matches} should match)"
        )

        services = [start_service(settings) for _ in range(args.instances)]
        rate, measured, seconds = drain(engine, namespace.topic(RECORDS_EVENTS), len(backlog), services)
        commands = wait_for_commands(settings, namespace, matches)
        print(
            f"throughput: {rate:,.0f} record events/s with {args.instances} instance(s) "
            f"({measured} events in {seconds:.2f} s, timed once every instance was handling events); "
            f"{commands} StartRun(s) for {matches} matching events"
        )
        for _, port in services:
            batches, batch_seconds = service_metrics(port)
            if batches:
                print(
                    f"  an instance: {batches:.0f} polled batches, {batch_seconds / batches * 1000:.1f} ms "
                    "of handling each on average"
                )

        timings = sorted(asyncio.run(latency(settings.kafka_bootstrap, namespace, args.latency_samples)))
        print(
            f"latency, one matching event at a time, event sent to StartRun readable: "
            f"p50 {statistics.median(timings) * 1000:.1f} ms, "
            f"p99 {timings[max(0, int(len(timings) * 0.99) - 1)] * 1000:.1f} ms ({len(timings)} samples)"
        )
    finally:
        for service, _ in services:
            stop(service)
        engine.dispose()
        cleanup(settings, namespace)


def start_service(settings: ServiceSettings) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {
        **os.environ,
        "MILLRACE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "MILLRACE_DATABASE_URL": settings.database_url,
        "MILLRACE_NAMESPACE": settings.namespace,
        "MILLRACE_HTTP_PORT": str(port),
        "MILLRACE_LOG_LEVEL": "WARNING",
    }
    executable = Path(sys.executable).parent / "millrace-trigger"
    return subprocess.Popen(
        [str(executable)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ), port


def stop(service: subprocess.Popen) -> None:
    if service.poll() is None:
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(20)
        except subprocess.TimeoutExpired:
            service.kill()


def drain(
    engine: Engine, topic: str, total: int, services: list[tuple[subprocess.Popen, int]]
) -> tuple[float, int, float]:
    """Events per second from the moment every instance handles events until the backlog is done."""
    start: tuple[float, int] | None = None
    while True:
        count = handled(engine, topic)
        now = time.perf_counter()
        if start is None and count and all(_handled_any(port) for _, port in services):
            start = (now, count)
        if count >= total:
            break
        if any(service.poll() is not None for service, _ in services):
            raise RuntimeError("a trigger service exited")
        time.sleep(0.05)
    assert start is not None, "the backlog was done before every instance had handled a batch"
    seconds = now - start[0]
    return (total - start[1]) / max(seconds, 1e-9), total - start[1], seconds


def _handled_any(port: int) -> bool:
    try:
        return service_metrics(port)[0] > 0
    except OSError:
        return False


def wait_for_commands(settings: ServiceSettings, namespace: Namespace, expected: int) -> int:
    deadline = time.monotonic() + 30
    topic = namespace.topic(RUNS_COMMANDS)
    while (
        found := asyncio.run(end_offsets(settings.kafka_bootstrap, topic, RUNS_COMMANDS.partitions))
    ) < expected:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return found


def cleanup(settings: ServiceSettings, namespace: Namespace) -> None:
    engine = create_engine(settings.database_url)
    with engine.begin() as connection:
        connection.execute(text(f'drop schema if exists "{settings.database_schema}" cascade'))
    engine.dispose()

    async def drop_topics() -> None:
        admin = AIOKafkaAdminClient(**kafka_client(settings.kafka_bootstrap))
        await admin.start()
        try:
            await admin.delete_topics([namespace.topic(t) for t in every_topic()])
        finally:
            await admin.close()

    asyncio.run(drop_topics())
    print(f"namespace {settings.namespace} removed")


if __name__ == "__main__":
    main()
