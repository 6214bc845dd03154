"""The secured Kafka of the `cluster` profiles: three KRaft nodes from the same jars as the single
broker, each a broker and a controller (a controller quorum of three), secured as a production
cluster would be.

- Clients and inter-broker traffic: SASL_SSL with SCRAM-SHA-512 on each node's client port.
- Controller traffic: SSL with client certificates required (mutual TLS). Kafka's controllers
  cannot take SCRAM on their own listener (SCRAM credentials live in the metadata log the
  controllers serve), so the nodes prove themselves to each other with their certificate.
- TLS: a certificate authority and a node certificate (SANs 127.0.0.1 and localhost) generated with
  openssl at the first start, kept until `reset`; the node's keystore is PKCS12, the truststore the
  CA's PEM file (Kafka 4 reads both).
- SCRAM users created when the storage is formatted (`kafka-storage format --add-scram`): one for
  the nodes' inter-broker traffic and one for Millrace's services and admin tools; their passwords
  are random and kept in files readable by the owner only (the format command's arguments carry
  them for the seconds it runs: a local profile, not a way to provision production users).
- Authorization: StandardAuthorizer, nothing allowed without an ACL except to the super users
  (the nodes' SCRAM user and certificate, and Millrace's user).
- Durability: default replication factor 3, min.insync.replicas 2, no unclean leader election.

Standard library and openssl only; used by infra.py (start/stop/status/reset of a profile with
`brokers > 1`) and by the cluster tests (which kill and restart one node).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import ssl
import struct
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import infra

BROKER_USER = "millrace-broker"
"""SCRAM user of the nodes' inter-broker traffic."""
SERVICE_USER = "millrace"
"""SCRAM user of Millrace's services and admin tools (a super user)."""
NODE_SUBJECT = "/CN=millrace-broker"
NODE_PRINCIPAL = "User:CN=millrace-broker"
"""The principal a node's certificate gives it on the controller listener."""
SUPER_USERS = (f"User:{BROKER_USER}", NODE_PRINCIPAL, f"User:{SERVICE_USER}")
MECHANISM = "SCRAM-SHA-512"
AUTHORIZER = "org.apache.kafka.metadata.authorizer.StandardAuthorizer"
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
NODE_JVM = ["-Xms128m", "-Xmx256m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
CERT_DAYS = "825"


# ---- ports and files ---------------------------------------------------------------------------


def node_ids(p: infra.Profile) -> range:
    return range(1, p.brokers + 1)


def client_port(p: infra.Profile, node: int) -> int:
    """Node `node`'s SASL_SSL port: the profile's Kafka port and the ones after it."""
    return p.kafka_port + node - 1


def controller_port(p: infra.Profile, node: int) -> int:
    """Node `node`'s controller port: after every client port."""
    return p.kafka_port + p.brokers + node - 1


def all_ports(p: infra.Profile) -> list[int]:
    return [port for node in node_ids(p) for port in (client_port(p, node), controller_port(p, node))]


def bootstrap(p: infra.Profile) -> str:
    return ",".join(f"{infra.HOST}:{client_port(p, node)}" for node in node_ids(p))


def security_dir(p: infra.Profile) -> Path:
    return p.kafka_dir / "security"


def ca_file(p: infra.Profile) -> Path:
    return security_dir(p) / "ca.crt"


def password_file(p: infra.Profile, user: str = SERVICE_USER) -> Path:
    return security_dir(p) / f"{user}.password"


def admin_properties(p: infra.Profile) -> Path:
    """Client settings for Kafka's own command-line tools (`--command-config`), as the service user."""
    return security_dir(p) / "admin.properties"


def node_dir(p: infra.Profile, node: int) -> Path:
    return p.kafka_dir / f"node-{node}"


def pid_path(p: infra.Profile, node: int) -> Path:
    return p.run_dir / f"kafka-{node}.pid"


def node_pid(p: infra.Profile, node: int) -> int | None:
    return infra.read_pid(pid_path(p, node))


def env(p: infra.Profile) -> dict[str, str]:
    """The settings a Millrace process needs to reach this cluster."""
    return {
        "MILLRACE_KAFKA_BOOTSTRAP": bootstrap(p),
        "MILLRACE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "MILLRACE_KAFKA_SASL_MECHANISM": MECHANISM,
        "MILLRACE_KAFKA_SASL_USERNAME": SERVICE_USER,
        "MILLRACE_KAFKA_SASL_PASSWORD_FILE": str(password_file(p)),
        "MILLRACE_KAFKA_SSL_CA_FILE": str(ca_file(p)),
        "MILLRACE_KAFKA_REPLICATION_FACTOR": str(REPLICATION_FACTOR),
        "MILLRACE_KAFKA_MIN_INSYNC_REPLICAS": str(MIN_INSYNC_REPLICAS),
    }


# ---- credentials and certificates --------------------------------------------------------------


def _secret_file(path: Path) -> str:
    """The secret in `path`, made (random, owner-only) if missing."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_hex(24))
    return path.read_text().strip()


def _openssl(*args: str) -> None:
    infra.run([str(infra.install_openssl()), *args])


def ensure_certificates(p: infra.Profile) -> None:
    """A CA and a node certificate signed by it (made once per profile, kept until `reset`)."""
    d = security_dir(p)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o700)
    keystore = d / "node.p12"
    if keystore.is_file() and ca_file(p).is_file():
        return
    infra.log(f"generating a certificate authority and the nodes' certificate in {d}")
    ca_key, node_key, csr, cert, ext = (
        d / n for n in ("ca.key", "node.key", "node.csr", "node.crt", "node.ext")
    )
    ca, passfile = str(ca_file(p)), d / "keystore.password"
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-sha256", "-days", CERT_DAYS,
             "-subj", "/CN=Millrace local cluster CA", "-keyout", str(ca_key), "-out", ca)  # fmt: skip
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", NODE_SUBJECT,
             "-keyout", str(node_key), "-out", str(csr))  # fmt: skip
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth,clientAuth\nkeyUsage=digitalSignature,keyEncipherment\n"
    )
    _openssl("x509", "-req", "-in", str(csr), "-CA", ca, "-CAkey", str(ca_key), "-CAcreateserial",
             "-days", CERT_DAYS, "-sha256", "-extfile", str(ext), "-out", str(cert))  # fmt: skip
    _openssl("pkcs12", "-export", "-in", str(cert), "-inkey", str(node_key), "-certfile", ca,
             "-name", "node", "-out", str(keystore), "-passout", f"file:{passfile}")  # fmt: skip
    for path in (ca_key, node_key, keystore):
        path.chmod(0o600)
    csr.unlink()


def ensure_credentials(p: infra.Profile) -> dict[str, str]:
    """The passwords of the keystore and of both SCRAM users; the tools' client settings file."""
    d = security_dir(p)
    passwords = {
        "keystore": _secret_file(d / "keystore.password"),
        BROKER_USER: _secret_file(password_file(p, BROKER_USER)),
        SERVICE_USER: _secret_file(password_file(p, SERVICE_USER)),
    }
    path = admin_properties(p)
    if not path.is_file():
        path.touch(mode=0o600)
        path.write_text(
            "security.protocol=SASL_SSL\n"
            f"sasl.mechanism={MECHANISM}\n"
            f"sasl.jaas.config={_jaas(SERVICE_USER, passwords[SERVICE_USER])}\n"
            f"ssl.truststore.type=PEM\nssl.truststore.location={ca_file(p)}\n"
        )
    return passwords


def _jaas(user: str, password: str) -> str:
    module = "org.apache.kafka.common.security.scram.ScramLoginModule"
    return f'{module} required username="{user}" password="{password}";'


# ---- configuration -----------------------------------------------------------------------------


def node_properties(p: infra.Profile, node: int, passwords: dict[str, str]) -> dict[str, str]:
    voters = ",".join(f"{n}@{infra.HOST}:{controller_port(p, n)}" for n in node_ids(p))
    security = security_dir(p)
    client = f"{infra.HOST}:{client_port(p, node)}"
    return {
        "process.roles": "broker,controller",
        "node.id": str(node),
        "controller.quorum.voters": voters,
        "listeners": f"SASL_SSL://{client},CONTROLLER://{infra.HOST}:{controller_port(p, node)}",
        "advertised.listeners": f"SASL_SSL://{client}",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SSL",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "SASL_SSL",
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.sasl_ssl.{MECHANISM.lower()}.sasl.jaas.config": _jaas(
            BROKER_USER, passwords[BROKER_USER]
        ),
        "listener.name.controller.ssl.client.auth": "required",
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(security / "node.p12"),
        "ssl.keystore.password": passwords["keystore"],
        "ssl.key.password": passwords["keystore"],
        "ssl.truststore.type": "PEM",
        "ssl.truststore.location": str(ca_file(p)),
        "ssl.endpoint.identification.algorithm": "https",
        "authorizer.class.name": AUTHORIZER,
        "super.users": ";".join(SUPER_USERS),
        "allow.everyone.if.no.acl.found": "false",
        "log.dirs": str(node_dir(p, node) / "data"),
        "num.network.threads": "2",
        "num.io.threads": "2",
        "background.threads": "2",
        "num.partitions": "1",
        "default.replication.factor": str(REPLICATION_FACTOR),
        "min.insync.replicas": str(MIN_INSYNC_REPLICAS),
        "unclean.leader.election.enable": "false",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        "offsets.topic.replication.factor": str(REPLICATION_FACTOR),
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": str(REPLICATION_FACTOR),
        "transaction.state.log.min.isr": str(MIN_INSYNC_REPLICAS),
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": str(REPLICATION_FACTOR),
        "share.coordinator.state.topic.min.isr": str(MIN_INSYNC_REPLICAS),
        # A node killed with -9 is fenced after this long, and its partitions' leadership moves.
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
        "log.retention.hours": "48",
        "log.segment.bytes": str(64 * 1024 * 1024),
        # The log cleaner takes this from the heap at start, in one piece (128 MB by default, half a
        # node's heap): a node starting under load died with OutOfMemoryError there (2026-12-04).
        "log.cleaner.dedupe.buffer.size": str(infra.CLEANER_DEDUPE_BYTES),
    }


def write_node_config(p: infra.Profile, node: int, passwords: dict[str, str]) -> Path:
    """(Re)generate node `node`'s server.properties (owner-only: it holds passwords) and log4j2.xml."""
    d = node_dir(p, node)
    d.mkdir(parents=True, exist_ok=True)
    server = d / "server.properties"
    server.touch(mode=0o600)
    lines = [f"{key}={value}\n" for key, value in node_properties(p, node, passwords).items()]
    server.write_text("# Generated by deploy/local/kafka_cluster.py on every start.\n" + "".join(lines))
    log_file = p.log_dir / f"kafka-{node}.log"
    (d / "log4j2.xml").write_text(infra.log4j_config(log_file))
    return server


def cluster_id(p: infra.Profile) -> str:
    path = p.kafka_dir / "cluster-id"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(infra.new_cluster_id() + "\n")
    return path.read_text().strip()


# ---- processes ---------------------------------------------------------------------------------


def _format_cmd(p: infra.Profile, node: int, passwords: dict[str, str]) -> list[str] | None:
    """The command formatting node `node`'s storage with the SCRAM users; None if formatted."""
    server = write_node_config(p, node, passwords)
    if (node_dir(p, node) / "data" / "meta.properties").exists():
        return None
    scram = [
        arg
        for user in (BROKER_USER, SERVICE_USER)
        for arg in ("--add-scram", f"{MECHANISM}=[name={user},password={passwords[user]}]")
    ]
    log4j = f"-Dlog4j2.configurationFile={node_dir(p, node) / 'log4j2.xml'}"
    return infra.java_cmd(
        infra.STORAGE_TOOL_MAIN, "format", "-t", cluster_id(p), "-c", str(server), *scram, jvm=[log4j]
    )


def format_nodes(p: infra.Profile, nodes: list[int]) -> None:
    """Format the storage of those of `nodes` not formatted yet, all at once (a JVM each)."""
    passwords = ensure_credentials(p)
    commands = {node: cmd for node in nodes if (cmd := _format_cmd(p, node, passwords))}
    if not commands:
        return
    infra.log(f"formatting the storage of Kafka node(s) {', '.join(map(str, commands))} with the SCRAM users")
    running_formats = {
        node: subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for node, cmd in commands.items()
    }
    for node, proc in running_formats.items():
        output, _ = proc.communicate()
        if proc.returncode != 0:
            infra.die(f"formatting Kafka node {node} failed ({proc.returncode}):\n{output}")


def start_node(p: infra.Profile, node: int) -> int:
    """Launch node `node` detached (formatting its storage first if needed); returns its pid."""
    format_nodes(p, [node])
    p.log_dir.mkdir(parents=True, exist_ok=True)
    log4j = f"-Dlog4j2.configurationFile={node_dir(p, node) / 'log4j2.xml'}"
    gc_log = infra.gc_log_option(p.log_dir / f"kafka-{node}-gc.log")
    jvm = [*NODE_JVM, gc_log, log4j, f"-Dkafka.logs.dir={p.log_dir}"]
    cmd = infra.java_cmd(infra.KAFKA_MAIN, str(node_dir(p, node) / "server.properties"), jvm=jvm)
    pid = infra.spawn_detached(cmd, p.log_dir / f"kafka-{node}.out", pid_path(p, node))
    infra.log(f"Kafka node {node} starting (pid {pid}) on {infra.HOST}:{client_port(p, node)}")
    return pid


def node_ready(p: infra.Profile, node: int, timeout: float = 2.0) -> bool:
    """True if node `node` serves requests on its SASL_SSL port: a TLS handshake verified against
    the CA, then a SaslHandshake (v1) that names SCRAM-SHA-512 as enabled. The node answers
    requests only once it has joined the cluster."""
    context = ssl.create_default_context(cafile=str(ca_file(p)))
    client = b"millrace-infra"
    mechanism = MECHANISM.encode()
    header = struct.pack(">hhih", 17, 1, 1, len(client)) + client  # api key 17 = SaslHandshake
    request = header + struct.pack(">h", len(mechanism)) + mechanism
    try:
        with (
            socket.create_connection((infra.HOST, client_port(p, node)), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=infra.HOST) as sock,
        ):
            sock.sendall(struct.pack(">i", len(request)) + request)
            with sock.makefile("rb") as stream:
                (size,) = struct.unpack(">i", stream.read(4))
                response = stream.read(size)
        _correlation_id, error_code = struct.unpack_from(">ih", response)
        return error_code == 0
    except (OSError, ssl.SSLError, struct.error):
        return False


def wait_ready(p: infra.Profile, nodes: list[int], timeout: float = infra.KAFKA_START_TIMEOUT) -> None:
    """Wait until every node of `nodes` serves requests; on failure stop the cluster, show logs."""
    deadline = time.monotonic() + timeout
    waiting = list(nodes)
    while waiting:
        waiting = [node for node in waiting if not node_ready(p, node)]
        dead = [node for node in waiting if node_pid(p, node) is None]
        if dead or (waiting and time.monotonic() > deadline):
            node = (dead or waiting)[0]
            stop(p)
            out, server_log = p.log_dir / f"kafka-{node}.out", p.log_dir / f"kafka-{node}.log"
            infra.die(
                f"Kafka node {node} did not become ready on {infra.HOST}:{client_port(p, node)}\n"
                f"--- {out}:\n{infra.tail(out)}\n--- {server_log}:\n{infra.tail(server_log)}"
            )
        if waiting:
            time.sleep(0.5)
    infra.log(f"Kafka cluster ready on {bootstrap(p)} (SASL_SSL, {MECHANISM})")


def running(p: infra.Profile) -> list[int]:
    return [node for node in node_ids(p) if node_pid(p, node)]


def start(p: infra.Profile) -> None:
    """Start every node not running yet (all at once: the quorum needs a majority) and wait."""
    ensure_credentials(p)
    ensure_certificates(p)
    up = running(p)
    if up:
        infra.log(f"Kafka node(s) {', '.join(map(str, up))} already running")
    format_nodes(p, [node for node in node_ids(p) if node not in up])
    for node in node_ids(p):
        if node not in up:
            start_node(p, node)
    wait_ready(p, list(node_ids(p)))


def kill_node(p: infra.Profile, node: int) -> None:
    """kill -9 of node `node` (for fault drills); returns once it is gone."""
    pid = node_pid(p, node)
    pid_path(p, node).unlink(missing_ok=True)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    while infra.pid_alive(pid):
        time.sleep(0.05)


def stop(p: infra.Profile) -> None:
    """SIGTERM every node at once: one at a time, the last one waits out its timeout for a
    controller quorum that the others have already taken away."""

    def stop_node(node: int) -> None:
        if infra.stop_pid_file(pid_path(p, node), timeout=30):
            infra.log(f"Kafka node {node} stopped")

    with ThreadPoolExecutor(max_workers=p.brokers) as stopping:
        list(stopping.map(stop_node, node_ids(p)))


def status_lines(p: infra.Profile) -> list[str]:
    lines = []
    for node in node_ids(p):
        pid = node_pid(p, node)
        state = (
            f"running (pid {pid}), {'ready' if node_ready(p, node) else 'NOT answering'}"
            if pid
            else "stopped"
        )
        lines.append(f"  kafka-{node}   {infra.HOST}:{client_port(p, node)}  {state}")
    return lines
