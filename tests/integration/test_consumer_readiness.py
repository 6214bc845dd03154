"""``/readyz`` means the service's consumers do their work, against the real Kafka and PostgreSQL: the
approval service, kept out of its group by a member stuck in a rebalance, reading a topic that was
deleted, or stuck on a message while its lag grows, answers 503 with the reason after the set time
while ``/healthz`` stays 200, and 200 again once it gets its partitions, its topic or its messages
move."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from millrace_common.contracts.messages.run_events import RunCompleted
from millrace_common.contracts.topics import RUNS_APPROVALS, ConsumerGroup, Namespace
from millrace_common.platform.topic_admin import ensure_topics
from sqlalchemy import create_engine, text

from tests.support.infra import Infra
from tests.support.kafka import _sync, kafka_client
from tests.support.processes import System

pytestmark = pytest.mark.integration

SHORT = {
    "MILLRACE_READINESS_ASSIGNMENT_SECONDS": "5",
    "MILLRACE_READINESS_PROGRESS_SECONDS": "3",
    "MILLRACE_READINESS_SAMPLE_SECONDS": "0.3",
}


def until(answer: Callable[[], httpx.Response | None], timeout: float = 40) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = answer()
        if response is not None:
            return response
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout} s")


def readiness(url: str, status: int, saying: str = "") -> httpx.Response:
    """The first ``/readyz`` answer with ``status`` (and ``saying`` in its detail)."""

    def probe() -> httpx.Response | None:
        response = httpx.get(f"{url}/readyz", timeout=5)
        if response.status_code != status or saying not in response.json().get("detail", ""):
            return None
        return response

    return until(probe)


class _Holding(ConsumerRebalanceListener):
    """Takes the group's partitions, then does not give them back until released."""

    def __init__(self, assigned: threading.Event, release: asyncio.Event) -> None:
        self._assigned = assigned
        self._release = release

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        if revoked:
            await self._release.wait()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        if assigned:
            self._assigned.set()


class GroupHolder:
    """A member of a group that holds every partition and, when a rebalance comes, keeps it from
    finishing (its revocation waits) until :meth:`release`."""

    def __init__(self, bootstrap: str, group: str, topic: str) -> None:
        self._bootstrap, self._group, self._topic = bootstrap, group, topic
        self.assigned = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    def start(self) -> None:
        self._thread.start()
        assert self.assigned.wait(30), "the holder got no partitions"

    def release(self) -> None:
        assert self._loop is not None and self._release is not None
        self._loop.call_soon_threadsafe(self._release.set)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._release is not None:
            self._loop.call_soon_threadsafe(self._release.set)
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)

    async def _hold(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._release, self._stop = asyncio.Event(), asyncio.Event()
        consumer = AIOKafkaConsumer(
            **kafka_client(self._bootstrap),
            group_id=self._group,
            enable_auto_commit=False,
            # Long enough that the group waits for this member through the whole test.
            session_timeout_ms=60_000,
            heartbeat_interval_ms=1_000,
            max_poll_interval_ms=120_000,
            rebalance_timeout_ms=120_000,
        )
        consumer.subscribe([self._topic], listener=_Holding(self.assigned, self._release))
        await consumer.start()
        try:
            while not self._stop.is_set():
                await consumer.getmany(timeout_ms=200)
        finally:
            await consumer.stop()


@pytest.fixture
def holder(infra: Infra, namespace: str) -> Iterator[GroupHolder]:
    names = Namespace(namespace)
    held = GroupHolder(
        infra.kafka_bootstrap, names.group(ConsumerGroup.APPROVAL), names.topic(RUNS_APPROVALS)
    )
    held.start()
    yield held
    held.stop()


def test_a_consumer_kept_out_of_its_group_is_not_ready_after_the_set_time_and_ready_once_it_joins(
    system: System, holder: GroupHolder
):
    system.start(("approval",), extra_env=SHORT)
    url = system.url("approval")

    refused = readiness(url, 503)
    assert refused.headers["content-type"].startswith("application/problem+json")
    problem = refused.json()
    assert problem["code"] == "not_ready" and problem["checks"]["consumers"] is False
    assert "no partition assignment" in problem["detail"], problem
    assert any(reason.startswith("consumer group ") for reason in problem["reasons"]), problem
    assert problem["checks"]["kafka"] and problem["checks"]["postgresql"]
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200

    holder.release()
    assert readiness(url, 200).json()["checks"] == {"kafka": True, "postgresql": True, "consumers": True}


def publish_run_events(bootstrap: str, topic: str, count: int) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(**kafka_client(bootstrap))
        await producer.start()
        try:
            for _ in range(count):
                event = RunCompleted(tenant_id="readiness", run_id=uuid.uuid4())
                await producer.send_and_wait(topic, event.to_bytes(), key=str(event.run_id).encode())
        finally:
            await producer.stop()

    _sync(send())


def test_a_consumer_stuck_on_a_message_while_lag_grows_is_not_ready_and_ready_when_it_moves(
    system: System, infra: Infra, namespace: str
):
    system.start(("approval",), extra_env=SHORT)
    url = system.url("approval")
    topic = Namespace(namespace).topic(RUNS_APPROVALS)
    engine = create_engine(infra.database_url)
    try:
        with engine.connect() as connection:
            # The approval service closes a finished run's pending approvals: while this lock is
            # held its handler waits on the first run.completed, and those behind it pile up.
            transaction = connection.begin()
            connection.execute(text(f'LOCK TABLE "{namespace}".approvals IN ACCESS EXCLUSIVE MODE'))
            publish_run_events(infra.kafka_bootstrap, topic, 20)

            problem = readiness(url, 503).json()
            assert problem["code"] == "not_ready" and "no progress on" in problem["detail"], problem
            assert "while its lag is" in problem["detail"]
            assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200

            transaction.rollback()
        readiness(url, 200)
    finally:
        engine.dispose()


def delete_topic(bootstrap: str, topic: str) -> None:
    async def delete() -> None:
        admin = AIOKafkaAdminClient(**kafka_client(bootstrap))
        await admin.start()
        try:
            await admin.delete_topics([topic])
        finally:
            await admin.close()

    _sync(delete())


def test_a_consumer_whose_topic_was_deleted_is_not_ready_naming_it_and_ready_once_it_is_back(
    system: System, infra: Infra, namespace: str
):
    system.start(("approval",), extra_env=SHORT)
    url = system.url("approval")
    topic = Namespace(namespace).topic(RUNS_APPROVALS)

    delete_topic(infra.kafka_bootstrap, topic)
    problem = readiness(url, 503, saying=f"topic {topic} does not exist").json()
    assert problem["code"] == "not_ready" and problem["checks"]["consumers"] is False
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200

    _sync(ensure_topics(infra.settings(namespace), Namespace(namespace)))
    readiness(url, 200)
