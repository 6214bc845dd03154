"""What the trigger integration tests share (no tests here): the gateway and trigger service as real
processes, workflows made through the API, record events produced straight to Kafka, and the
StartRun commands read back from ``runs.commands``. Test modules import the ``*_fixture`` functions
(pytest knows them by their ``name``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from millrace_common.contracts.messages.envelope import DeadLetter, Envelope
from millrace_common.contracts.messages.run_commands import RUN_COMMAND, StartRun
from millrace_common.contracts.topics import RECORDS_EVENTS, RUNS_COMMANDS, ConsumerGroup, Namespace, Topic
from sqlalchemy import create_engine, text

from tests.support.api import Account, provision_tenant, signed_in
from tests.support.infra import Infra
from tests.support.kafka import group_lag, kafka_client, partitions_of
from tests.support.processes import System


def trigger_definition(trigger: dict, *, max_per_hour: int | None = None) -> dict:
    definition: dict = {
        "nodes": [
            {
                "id": "when",
                "type": "trigger",
                "position": {"x": 0, "y": 0},
                "data": {"name": "When", **trigger},
            },
            {"id": "done", "type": "end", "position": {"x": 0, "y": 100}, "data": {"name": "Done"}},
        ],
        "edges": [{"id": "e", "source": "when", "target": "done"}],
    }
    if max_per_hour is not None:
        definition["settings"] = {"max_executions_per_hour": max_per_hour}
    return definition


@dataclass
class Rig:
    """A tenant signed in to a running gateway, with the trigger service beside it."""

    system: System
    account: Account
    api: httpx.Client

    @property
    def tenant(self) -> str:
        return self.account.tenant_id

    @property
    def topics(self) -> Namespace:
        return Namespace(self.system.namespace)

    @property
    def bootstrap(self) -> str:
        return self.system.infra.kafka_bootstrap

    def active_workflow(self, trigger: dict, *, max_per_hour: int | None = None) -> str:
        created = self.api.post(
            "/api/v1/workflows",
            json={
                "name": f"wf-{uuid.uuid4().hex[:6]}",
                "definition": trigger_definition(trigger, max_per_hour=max_per_hour),
            },
        )
        assert created.status_code == 201, created.text
        workflow_id = created.json()["id"]
        activated = self.api.post(f"/api/v1/workflows/{workflow_id}/activate", json={})
        assert activated.status_code == 200, activated.text
        return workflow_id

    def produce(self, *events: Envelope | tuple[bytes, bytes], topic: Topic = RECORDS_EVENTS) -> None:
        """Publish events (or raw ``(key, value)`` pairs) as an outside producer would."""

        async def send() -> None:
            producer = AIOKafkaProducer(**kafka_client(self.bootstrap), acks="all")
            await producer.start()
            try:
                for event in events:
                    key, value = (
                        event
                        if isinstance(event, tuple)
                        else (getattr(event, "record_id", "k").encode(), event.to_bytes())
                    )
                    await producer.send_and_wait(self.topics.topic(topic), value, key=key)
            finally:
                await producer.stop()

        asyncio.run(send())

    def read(self, topic: Topic) -> list[bytes]:
        """Every message on a topic of the namespace, from the beginning to its current end."""

        async def fetch() -> list[bytes]:
            consumer = AIOKafkaConsumer(
                **kafka_client(self.bootstrap), enable_auto_commit=False, auto_offset_reset="earliest"
            )
            await consumer.start()
            try:
                name = self.topics.topic(topic)
                # From the broker: dead-letter topics have as many partitions as the settings say.
                partitions = [TopicPartition(name, p) for p in await partitions_of(self.bootstrap, name)]
                consumer.assign(partitions)
                ends = await consumer.end_offsets(partitions)
                for partition in partitions:
                    consumer.seek(partition, 0)
                values: list[bytes] = []
                while [p for p in partitions if await consumer.position(p) < ends[p]]:
                    batch = await consumer.getmany(timeout_ms=1000)
                    values.extend(r.value for records in batch.values() for r in records)
                return values
            finally:
                await consumer.stop()

        return asyncio.run(fetch())

    def start_runs(self, workflow_id: str | None = None) -> list[StartRun]:
        commands = [RUN_COMMAND.validate_json(value) for value in self.read(RUNS_COMMANDS)]
        return [
            c
            for c in commands
            if isinstance(c, StartRun) and (workflow_id is None or str(c.workflow_id) == workflow_id)
        ]

    def wait_for_runs(
        self, workflow_id: str, count: int, timeout: float = 30, *, topic: Topic = RECORDS_EVENTS
    ) -> list[StartRun]:
        """Wait until ``count`` StartRuns of the workflow are out, then make sure no more follow
        (``topic`` is where their causes arrive)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.start_runs(workflow_id)
            if len(found) >= count:
                break
            time.sleep(0.2)
        self.wait_until_settled(topic)
        found = self.start_runs(workflow_id)
        assert len(found) == count, (
            f"expected {count} StartRun(s), got {len(found)}: {found}; firings: {self.firings(workflow_id)}"
        )
        return found

    def dead_letters(self, topic: Topic = RECORDS_EVENTS) -> list[DeadLetter]:
        return [DeadLetter.model_validate_json(v) for v in self.read(topic.dlq)]

    def sql(self, query: str, **params: object) -> list[dict]:
        engine = create_engine(
            self.system.infra.database_url, connect_args={"options": f"-csearch_path={self.system.namespace}"}
        )
        try:
            with engine.connect() as connection:
                return [dict(row._mapping) for row in connection.execute(text(query), params)]
        finally:
            engine.dispose()

    def firings(self, workflow_id: str) -> list[dict]:
        return self.sql(
            "select * from trigger_firings where workflow_id = cast(:w as uuid)"
            " order by fired_at, idempotency_key",
            w=workflow_id,
        )

    def wait_until_settled(self, topic: Topic = RECORDS_EVENTS, timeout: float = 30) -> None:
        """Until the trigger service has handled everything on ``topic`` and published its StartRuns."""
        name = self.topics.topic(topic)
        # The gateway publishes webhook calls and record events through its outbox after answering:
        # the topic's end is only known once those rows are gone (a row goes once Kafka acknowledged it).
        deadline = time.monotonic() + timeout
        while self.sql("select count(*) as n from outbox where producer in ('gateway', 'records')")[0]["n"]:
            assert time.monotonic() < deadline, "the gateway's outbox was not published"
            time.sleep(0.05)

        async def ends() -> dict[int, int]:
            consumer = AIOKafkaConsumer(**kafka_client(self.bootstrap))
            await consumer.start()
            try:
                # From the broker: dead-letter topics have as many partitions as the settings say.
                partitions = [TopicPartition(name, p) for p in await partitions_of(self.bootstrap, name)]
                return {
                    tp.partition: offset for tp, offset in (await consumer.end_offsets(partitions)).items()
                }
            finally:
                await consumer.stop()

        wanted = {p: o for p, o in asyncio.run(ends()).items() if o > 0}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = {
                row["partition"]: row["next_offset"]
                for row in self.sql(
                    "select partition, next_offset from consumer_positions where topic = :t", t=name
                )
            }
            pending = self.sql(
                "select count(*) as n from outbox where producer = 'trigger' or producer like 'trigger@%'"
            )[0]["n"]
            # Its positions pass what it handled; a message dead-lettered undecoded is handled when
            # the group's committed offset passes it (the positions move past it with the next one).
            caught_up = all(done.get(p, 0) >= o for p, o in wanted.items()) or (
                group_lag(self.bootstrap, self.topics.group(ConsumerGroup.TRIGGER), name) == 0
            )
            if caught_up and pending == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"the trigger service did not catch up with {name} in {timeout} s")

    def metric(self, name: str, **labels: str) -> float:
        body = httpx.get(f"{self.system.url('trigger')}/metrics", timeout=5).text
        total = 0.0
        for line in body.splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total


def rig_for(system: System, tenant: str) -> Iterator[Rig]:
    account = provision_tenant(system.infra, system.namespace, tenant)
    with signed_in(system.url("gateway"), account) as api:
        yield Rig(system, account, api)


def write_clock(path: Path, instant: object) -> None:
    """Move the trigger service's test clock; written whole, then renamed, so it is never half-read."""
    partial = path.with_suffix(".tmp")
    partial.write_text(str(instant.isoformat() if hasattr(instant, "isoformat") else instant))
    partial.replace(path)


@pytest.fixture(scope="module", name="trigger_system")
def trigger_system_fixture(infra: Infra, module_namespace: str) -> Iterator[System]:
    """The gateway and the trigger service, once for the module."""
    running = System(infra, module_namespace)
    try:
        running.start(("gateway", "trigger"))
        yield running
    finally:
        running.stop_all()


@pytest.fixture(name="rig")
def rig_fixture(trigger_system: System) -> Iterator[Rig]:
    yield from rig_for(trigger_system, f"tenant-{uuid.uuid4().hex[:10]}")
