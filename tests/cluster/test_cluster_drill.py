"""Two instances of every service on the secured three-node cluster, under a steady load of webhook
calls and records (each record changed twice through the API as soon as it exists), while one Kafka
node is killed with -9 and restarted, and then one instance of every service is killed with -9 and
left down (the other instances carry on). Afterwards: every
accepted call is exactly one completed run, no node attempt was sent while an earlier one was
undecided, every record's events on ``records.events`` form one chain in order, and the API answered
2xx or 503, never another 5xx and never slowly. The figures (calls, runs, kills, recovery times) are
printed; tests/support/cluster.py is the drill."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.cluster import ClusterDrill
from tests.support.infra import Infra
from tests.support.network import LoopbackServer
from tests.support.processes import SERVICES, System

pytestmark = pytest.mark.cluster
READY_SECONDS = 420  # ten Python processes and three JVMs share two cores (with other work, minutes)


@pytest.mark.timeout(1200)
def test_killing_a_kafka_node_and_one_instance_of_every_service_loses_nothing_and_repeats_nothing(
    cluster_infra: Infra, namespace: str, server: LoopbackServer
) -> None:
    first = System(cluster_infra, namespace, label="-1")
    second = System(
        cluster_infra, namespace, jwt_secret=first.jwt_secret, encryption_key=first.encryption_key, label="-2"
    )
    began = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=2) as starting:  # ten processes on two cores: time
            list(starting.map(lambda system: system.start(ready_timeout=READY_SECONDS), (first, second)))
        print(f"cluster drill: 2 x {len(SERVICES)} services ready after {time.monotonic() - began:.1f} s")
        drill = ClusterDrill(
            [first, second],
            server,
            rate_per_second=4,
            hold_seconds=5,
            settle_seconds=5,
            ready_seconds=READY_SECONDS,
        )
        try:
            with drill.load():
                time.sleep(drill.settle)
                drill.kill_kafka_node(drill.nodes.nodes[0])
                drill.kill_one_instance_of_each(second)
                time.sleep(3 * drill.settle)  # the survivors alone, once their groups have rebalanced
            report = drill.audit(drain_seconds=120)
        finally:
            drill.close()
    finally:
        second.stop_all()
        first.stop_all()
    for line in report.lines():
        print(line)
    changes = sum(drill.changes.values())
    print(f"  record events read back {drill.record_events}; API changes to records {changes}")
    accepted = [call for call in report.calls if call.ident]
    assert {call.kind for call in accepted} == {"webhook", "record"}
    assert len(accepted) >= 60, f"too little load to prove anything: {len(accepted)} accepted calls"
    assert report.kills == 1 + len(SERVICES)
    assert not report.problems, "\n".join(report.problems)
    assert (report.lost, report.duplicated) == (0, 0)
    assert all(fault.recovered_after is not None for fault in report.faults), report.lines()
