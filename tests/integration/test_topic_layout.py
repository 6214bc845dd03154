"""``millrace-topics`` against the real broker: topics laid out as the settings say (partitions by
default, family and topic; min.insync.replicas; retention), configs set by an operator kept, dead-letter
topics on their own settings, a replication factor the cluster cannot hold refused, and growing
partitions: planned first, applied on request, never a shrink."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from millrace_common.contracts.topics import (
    NODES_READY_AI,
    NODES_READY_HTTP,
    RECORDS_EVENTS,
    RUNS_COMMANDS,
    Namespace,
    every_topic,
)
from millrace_common.platform.topic_admin import TopicsRefused, ensure_topics, grow_topics, layout_of

from tests.support.infra import Infra, drop_namespace
from tests.support.kafka import kafka_client, partitions_of

pytestmark = pytest.mark.integration

DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def bare_namespace(infra: Infra) -> Iterator[str]:
    """A namespace whose topics the test creates itself."""
    name = f"t{uuid.uuid4().hex[:12]}"
    yield name
    drop_namespace(infra, name)


def configs_of(infra: Infra, topic: str) -> dict[str, str]:
    async def read() -> dict[str, str]:
        admin = AIOKafkaAdminClient(**kafka_client(infra.kafka_bootstrap))
        await admin.start()
        try:
            [answer] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        finally:
            await admin.close()
        [resource] = answer.to_object()["resources"]
        return {e["config_names"]: e["config_value"] for e in resource["config_entries"]}

    return asyncio.run(read())


def settled_configs(
    infra: Infra, topic: str, expected: dict[str, str], timeout: float = 15
) -> dict[str, str]:
    """The topic's configs once ``expected`` shows (or after ``timeout``): a broker applies a config
    change from the metadata log a moment after the change is acknowledged."""
    deadline = time.monotonic() + timeout
    while True:
        configs = configs_of(infra, topic)
        if expected.items() <= configs.items() or time.monotonic() > deadline:
            return configs
        time.sleep(0.2)


def set_config(infra: Infra, topic: str, configs: dict[str, str]) -> None:
    async def alter() -> None:
        admin = AIOKafkaAdminClient(**kafka_client(infra.kafka_bootstrap))
        await admin.start()
        try:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=configs)])
        finally:
            await admin.close()

    asyncio.run(alter())


def count(infra: Infra, topic: str, expected: int | None = None, timeout: float = 15) -> int:
    """The topic's partitions; with ``expected``, once it shows (or after ``timeout``): the broker's
    metadata shows new partitions a moment after they were acknowledged."""
    deadline = time.monotonic() + timeout
    while True:
        found = len(asyncio.run(partitions_of(infra.kafka_bootstrap, topic)))
        if expected is None or found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_topics_are_created_with_the_partitions_retention_and_in_sync_replicas_the_settings_say(
    infra: Infra, bare_namespace: str
):
    settings = infra.settings(
        bare_namespace,
        kafka_partitions=4,
        kafka_topic_partitions="nodes.ready.*=5,nodes.ready.ai=2",
        kafka_retention_ms=2 * DAY_MS,
        dead_letter_partitions=2,
    )
    ns = Namespace(bare_namespace)
    report = asyncio.run(ensure_topics(settings, ns))
    assert len(report.created) == len(every_topic()) and not report.behind
    # Each count waits for the broker's metadata to show the new topic (it lags the acknowledgement).
    assert count(infra, ns.topic(RECORDS_EVENTS), 4) == 4
    assert count(infra, ns.topic(NODES_READY_HTTP), 5) == 5
    assert count(infra, ns.topic(NODES_READY_AI), 2) == 2
    assert count(infra, ns.topic(RECORDS_EVENTS.dlq), 2) == 2
    wanted = {"retention.ms": str(2 * DAY_MS), "min.insync.replicas": "1"}
    assert settled_configs(infra, ns.topic(RUNS_COMMANDS), wanted).items() >= wanted.items()
    dead_letters = {"retention.ms": str(30 * DAY_MS)}
    assert settled_configs(infra, ns.topic(RUNS_COMMANDS.dlq), dead_letters).items() >= dead_letters.items()


def test_running_again_sets_new_configs_keeps_an_operators_and_never_grows_a_keyed_topic(
    infra: Infra, bare_namespace: str
):
    ns = Namespace(bare_namespace)
    asyncio.run(ensure_topics(infra.settings(bare_namespace), ns))
    operators = {**configs_of(infra, ns.topic(RUNS_COMMANDS)), "segment.ms": "3600000"}
    set_config(infra, ns.topic(RUNS_COMMANDS), {"segment.ms": "3600000", "max.message.bytes": "1048588"})
    assert (
        settled_configs(infra, ns.topic(RUNS_COMMANDS), {"segment.ms": "3600000"})["segment.ms"] == "3600000"
    )
    settings = infra.settings(bare_namespace, kafka_partitions=8, kafka_retention_ms=3 * DAY_MS)
    report = asyncio.run(ensure_topics(settings, ns))
    assert report.created == []
    assert report.behind[ns.topic(RUNS_COMMANDS)] == (6, 8)
    assert count(infra, ns.topic(RUNS_COMMANDS)) == 6, "growing moves keys: only `grow` does it"
    configs = settled_configs(infra, ns.topic(RUNS_COMMANDS), {"retention.ms": str(3 * DAY_MS)})
    assert configs["retention.ms"] == str(3 * DAY_MS)
    assert configs["segment.ms"] == operators["segment.ms"], "a config set by an operator is kept"


def test_a_replication_factor_the_cluster_cannot_hold_is_refused_with_the_brokers_reason(
    infra: Infra, bare_namespace: str
):
    settings = infra.settings(bare_namespace, kafka_replication_factor=32)
    with pytest.raises(TopicsRefused, match="replication factor 32.*InvalidReplicationFactor"):
        asyncio.run(ensure_topics(settings, Namespace(bare_namespace)))


def test_growing_is_planned_first_applied_on_request_and_never_shrinks(infra: Infra, bare_namespace: str):
    ns = Namespace(bare_namespace)
    settings = infra.settings(bare_namespace)
    asyncio.run(ensure_topics(settings, ns))
    http = ns.topic(NODES_READY_HTTP)
    assert count(infra, http, 3) == 3 and count(infra, ns.topic(NODES_READY_AI), 3) == 3

    planned = asyncio.run(grow_topics(settings, {http: 9}, explicit=True, apply=False))
    assert [(g.partitions, g.to) for g in planned.grow] == [(3, 9)]
    assert count(infra, http) == 3

    grown = asyncio.run(grow_topics(settings, {http: 9}, explicit=True, apply=True))
    assert grown.refused == () and count(infra, http, 9) == 9

    shrink = asyncio.run(grow_topics(settings, {http: 4}, explicit=True, apply=True))
    assert shrink.grow == () and "cannot shrink" in shrink.refused[0]
    assert count(infra, http) == 9

    wider = infra.settings(bare_namespace, kafka_topic_partitions="nodes.ready.*=6")
    wanted = {ns.topic(t): layout_of(wider).partitions_of(t) for t in (NODES_READY_HTTP, NODES_READY_AI)}
    to_settings = asyncio.run(grow_topics(wider, wanted, explicit=False, apply=True))
    assert [g.topic for g in to_settings.grow] == [ns.topic(NODES_READY_AI)]
    assert (count(infra, ns.topic(NODES_READY_AI), 6), count(infra, http)) == (6, 9)


def topics_command(infra: Infra, namespace: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **infra.env(namespace), **env}
    executable = Path(sys.executable).parent / "millrace-topics"
    return subprocess.run(
        [str(executable), *args], env=environment, capture_output=True, text=True, timeout=120
    )


def test_the_grow_command_warns_about_key_order_and_changes_nothing_without_yes(
    infra: Infra, bare_namespace: str
):
    created = topics_command(infra, bare_namespace)
    assert created.returncode == 0, created.stderr
    ns = Namespace(bare_namespace)
    http = ns.topic(NODES_READY_HTTP)

    dry = topics_command(infra, bare_namespace, "grow", MILLRACE_KAFKA_TOPIC_PARTITIONS="nodes.ready.http=6")
    assert dry.returncode == 0, dry.stderr
    assert f"would grow {http} from 3 to 6 partitions" in dry.stderr
    assert "per-key order" in dry.stderr and "add --yes" in dry.stderr
    assert count(infra, http) == 3

    done = topics_command(
        infra, bare_namespace, "grow", "--topic", "nodes.ready.http", "--partitions", "6", "--yes"
    )
    assert done.returncode == 0, done.stderr
    assert f"grew {http} from 3 to 6 partitions" in done.stderr and count(infra, http, 6) == 6

    shrink = topics_command(infra, bare_namespace, "grow", "--topic", "nodes.ready.http", "--partitions", "3")
    assert shrink.returncode == 2
    assert "cannot shrink" in shrink.stderr and count(infra, http) == 6

    behind = topics_command(infra, bare_namespace, MILLRACE_KAFKA_PARTITIONS="8")
    assert f"{ns.topic(RUNS_COMMANDS)} has 6 partitions, the settings say 8" in behind.stderr
