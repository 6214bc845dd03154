"""A single Kafka node of the test's own that enforces ACLs: StandardAuthorizer, no access where no ACL
allows it, SCRAM-SHA-512 for outside principals on one listener (``outside``) and a PLAINTEXT listener
for the platform (``inside``; its anonymous principal is the super user, as the services' principal is
on a production cluster). From the same jars as deploy/local; data in a temporary directory; stopped
and removed by the context manager, whatever happened."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

ROOT = Path(__file__).resolve().parents[2]
JVM = ("-Xms128m", "-Xmx384m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")
FIRST_PORT = 42090
"""Where the node's three ports are looked for, upward (clear of the test profile's and the dev ports)."""


@dataclass(frozen=True)
class SecuredKafka:
    inside: str
    """host:port of the PLAINTEXT listener, whose principal is a super user (the services, the admin)."""
    outside: str
    """host:port of the SASL_PLAINTEXT (SCRAM-SHA-512) listener for outside producers."""


def _libs() -> str:
    found = sorted((ROOT / ".cache" / "kafka").glob("*/libs"))
    assert found, "no Kafka jars under .cache/kafka: run `python3 deploy/local/infra.py install`"
    return f"{found[-1]}/*"


def _free_ports(count: int, start: int = FIRST_PORT) -> list[int]:
    ports: list[int] = []
    port = start
    while len(ports) < count:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                ports.append(port)
            except OSError:
                pass
        port += 1
    return ports


def _config(directory: Path, inside: int, outside: int, controller: int) -> Path:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"INSIDE://127.0.0.1:{inside},OUTSIDE://127.0.0.1:{outside},"
        f"CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"INSIDE://127.0.0.1:{inside},OUTSIDE://127.0.0.1:{outside}",
        "listener.security.protocol.map": "INSIDE:PLAINTEXT,OUTSIDE:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "INSIDE",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.outside.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(directory / "data"),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "2",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
    }
    path = directory / "server.properties"
    path.write_text("".join(f"{key}={value}\n" for key, value in props.items()))
    return path


async def _answers(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        await admin.close()


@contextmanager
def secured_kafka(directory: Path, timeout: float = 120) -> Iterator[SecuredKafka]:
    # SECURED_KAFKA_FIRST_PORT moves where its ports are looked for (a shared machine's port ranges).
    inside, outside, controller = _free_ports(3, int(os.environ.get("SECURED_KAFKA_FIRST_PORT", FIRST_PORT)))
    server = _config(directory, inside, outside, controller)
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode().replace("-", "k")
    log = directory / "kafka.log"
    subprocess.run(
        [
            "java",
            *JVM,
            "-cp",
            _libs(),
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(server),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    with open(log, "wb") as out:
        process = subprocess.Popen(
            ["java", *JVM, "-cp", _libs(), "kafka.Kafka", str(server)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        node = SecuredKafka(f"127.0.0.1:{inside}", f"127.0.0.1:{outside}")
        deadline = time.monotonic() + timeout
        while not asyncio.run(_answers(node.inside)):
            assert process.poll() is None, f"the secured Kafka node exited: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the secured Kafka node did not answer in {timeout} s"
            time.sleep(1)
        yield node
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
