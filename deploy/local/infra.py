#!/usr/bin/env python3
"""Local infrastructure for Millrace: Kafka (KRaft), a PostgreSQL and a Prometheus.

No containers: Kafka runs from jars resolved out of Maven Central (deploy/kafka/pom.xml),
PostgreSQL and Prometheus from the distribution's packages. Jars live in .cache/kafka/<version>/libs,
state in .data/<profile>/{kafka,pg,prometheus,logs,run}. Prometheus scrapes the services on the
ports of deploy/local/services.py and loads the alert rules of deploy/prometheus/rules/.

The dev and test profiles run a single unsecured broker (PLAINTEXT). The cluster and cluster-test
profiles run three secured KRaft nodes (SASL_SSL with SCRAM-SHA-512, TLS, an authorizer;
replication factor 3, min.insync.replicas 2): deploy/local/kafka_cluster.py.

    infra.py install [--only kafka|postgresql|prometheus|openssl|browser|helm]
    infra.py start  --profile P [--kafka-port N] [--pg-port N]
    infra.py prometheus --profile P [--prometheus-port N]   (once the services run)
    infra.py stop   --profile P
    infra.py status --profile P
    infra.py reset  --profile P

`start` prints the connection settings on stdout as NAME=value lines (progress goes to
stderr), so its output can be eval'd or parsed. Ports given to `start` are remembered in
.data/<profile>/run/ports.json until `stop`, so later commands (and get_profile) see the
ports in use. `start`, `stop` and `reset` of one profile are serialised by a file lock.

Standard library only. Profile/get_profile and the process helpers (spawn_detached,
stop_pid_file, read_pid, wait_tcp, ensure_free, profile_lock, log, die, tail) are reused by
the sibling services.py.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import pwd
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

HOST = "127.0.0.1"
KAFKA_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
KAFKA_JVM = ["-Xms512m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true"]
CLEANER_DEDUPE_BYTES = 16 * 1024 * 1024
"""Kafka's log cleaner buffer (``log.cleaner.dedupe.buffer.size``, 128 MB by default), taken from the
heap in one piece when a broker starts: 16 MB holds about 700,000 keys a cleaning pass, far more than
the compacted topics here (the consumer offsets) have, and leaves the heap to the broker."""
KAFKA_START_TIMEOUT = 90.0


def kafka_threads(cores: int) -> dict[str, str]:
    """The single node's request threads, sized to the machine: one network thread per two cores and
    one request handler per core (at least two). Kafka's defaults (3 and 8) are a server's; on two
    cores shared with PostgreSQL and five services, 2 and 4 left the broker handing each request
    between more threads than cores, and 1 and 2 cut its CPU per run by about a tenth and halved the
    record path's p99 at half its burst rate (docs/benchmarks.md, "Kafka's threads")."""
    return {"num.network.threads": str(max(1, cores // 2)), "num.io.threads": str(max(2, cores))}


def machine_cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's cpuset narrows it; a CPU
    quota such as ``--cpus`` does not show here)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


DB_USER = DB_NAME = "millrace"


# ---- generic helpers (also used by services.py) ---------------------------------------------


def repo_root() -> Path:
    """The repository root (this file is deploy/local/infra.py)."""
    return Path(__file__).resolve().parents[2]


def log(msg: str) -> None:
    """Progress output; stderr, so stdout stays machine-readable."""
    print(f"[infra] {msg}", file=sys.stderr, flush=True)


def die(msg: str) -> NoReturn:
    print(f"[infra] error: {msg}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a text file ('' if it does not exist), read from its last 256 KB."""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - (256 << 10)))
            return "\n".join(file.read().decode(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return ""


@dataclasses.dataclass(frozen=True)
class Profile:
    """Ports and directories of one isolated environment (dev, test)."""

    name: str
    kafka_port: int
    pg_port: int
    prometheus_port: int = 0
    brokers: int = 1
    """1: one unsecured broker; 3: the secured cluster of kafka_cluster.py (client ports from
    kafka_port on, then the controller ports)."""
    http_port: int = 18080
    """deploy/local/services.py's first port: instance i of the k-th service listens on
    http_port + 10 * i + k."""
    instances: int = 1
    """How many processes of every service deploy/local/services.py starts."""

    @property
    def controller_port(self) -> int:
        return self.kafka_port + 1

    @property
    def clustered(self) -> bool:
        return self.brokers > 1

    def kafka_ports(self) -> list[int]:
        """Every port the profile's Kafka listens on."""
        return cluster_module().all_ports(self) if self.clustered else [self.kafka_port, self.controller_port]

    @property
    def data_dir(self) -> Path:
        return repo_root() / ".data" / self.name

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def pg_dir(self) -> Path:
        return self.data_dir / "pg"

    @property
    def prometheus_dir(self) -> Path:
        return self.data_dir / "prometheus"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        """Pid files of detached processes, and ports.json."""
        return self.data_dir / "run"

    def env(self) -> dict[str, str]:
        """Connection settings for Millrace processes."""
        kafka = {"MILLRACE_KAFKA_BOOTSTRAP": f"{HOST}:{self.kafka_port}"}
        if self.clustered:
            kafka = cluster_module().env(self)
        return {
            **kafka,
            "MILLRACE_DATABASE_URL": f"postgresql+psycopg://{DB_USER}@{HOST}:{self.pg_port}/{DB_NAME}",
        }


PROFILES = {
    "dev": Profile("dev", 19092, 15432, 19090),
    "test": Profile("test", 29092, 25432, 29090, http_port=28080),
    # Three secured nodes and two instances of every service (`make up PROFILE=cluster`).
    "cluster": Profile("cluster", 19192, 15532, 19190, brokers=3, http_port=18180, instances=2),
    # The same for the cluster tier of `make test` (its tests start their own services).
    "cluster-test": Profile("cluster-test", 29192, 25532, 29190, brokers=3, http_port=28180, instances=2),
}


def cluster_module():  # the module kafka_cluster
    """deploy/local/kafka_cluster.py, which imports this module back as `infra`."""
    this = sys.modules[__name__]
    sys.modules.setdefault("infra", this)
    here = str(Path(__file__).resolve().parent)
    if here not in sys.path:
        sys.path.insert(0, here)
    import kafka_cluster

    return kafka_cluster


def get_profile(
    name: str,
    kafka_port: int | None = None,
    pg_port: int | None = None,
    prometheus_port: int | None = None,
    http_port: int | None = None,
) -> Profile:
    """The named profile: explicit ports, else those of the running `start`, else defaults."""
    base = PROFILES[name]
    saved = base.run_dir / "ports.json"
    if saved.is_file():
        base = dataclasses.replace(base, **json.loads(saved.read_text()))
    return dataclasses.replace(
        base,
        kafka_port=kafka_port or base.kafka_port,
        pg_port=pg_port or base.pg_port,
        prometheus_port=prometheus_port or base.prometheus_port,
        http_port=http_port or base.http_port,
    )


@contextlib.contextmanager
def profile_lock(name: str) -> Iterator[None]:
    """Serialise start/stop/reset of one profile across processes (the lock survives reset)."""
    path = repo_root() / ".data" / f".{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def pid_alive(pid: int) -> bool:
    """True if `pid` runs (a zombie child of ours is reaped and counts as gone)."""
    with contextlib.suppress(ChildProcessError):  # ChildProcessError: not our child
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def read_pid(pid_path: Path) -> int | None:
    """The pid in `pid_path` if that process is alive and leads its own process group."""
    try:
        pid = int(pid_path.read_text().strip())
        return pid if pid_alive(pid) and os.getpgid(pid) == pid else None
    except (FileNotFoundError, ValueError, ProcessLookupError):
        return None


def spawn_detached(
    cmd: list[str], log_path: Path, pid_path: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> int:
    """Start `cmd` in its own session and process group, output appended to `log_path`.

    Writes the pid (which is also the process group id) to `pid_path` and returns it.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    pid_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env, cwd=cwd, start_new_session=True
        )
    pid_path.write_text(f"{proc.pid}\n")
    return proc.pid


def stop_pid_file(pid_path: Path, timeout: float = 30.0) -> bool:
    """SIGTERM the process group in `pid_path`, SIGKILL it after `timeout` s; remove the file.

    Returns True if something was running.
    """
    pid = read_pid(pid_path)
    pid_path.unlink(missing_ok=True)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if pid_alive(pid):
        log(f"pid {pid} ignored SIGTERM for {timeout:.0f} s, killing it")
    with contextlib.suppress(ProcessLookupError):  # also sweeps stragglers left in the group
        os.killpg(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)
    return True


def wait_tcp(host: str, port: int, timeout: float) -> bool:
    """Wait until host:port accepts TCP connections (tries at least once); False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def ensure_free(*ports: int) -> None:
    """Die if something already listens on one of `ports` of HOST."""
    busy = [str(port) for port in ports if wait_tcp(HOST, port, 0)]
    if busy:
        die(f"port(s) {', '.join(busy)} on {HOST} already in use; pick others (--kafka-port/--pg-port)")


def run(cmd: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command capturing its output; with `check`, die showing that output if it fails."""
    proc = subprocess.run(cmd, text=True, capture_output=True, **kwargs)
    if check and proc.returncode != 0:
        die(f"{shlex.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    return proc


# Every Debian package the repository installs, and the command that shows it is there. Nothing
# installs a Debian package except through apt_install() with one of these names; a test holds this
# table against the scripts and against docs/operations.md.
DEBIAN_PACKAGES: dict[str, str] = {
    "openjdk-17-jre-headless": "java",
    "maven": "mvn",
    "postgresql": "initdb",
    "prometheus": "promtool",
    "chromium": "chromium",
    "chromium-driver": "chromedriver",
    "openssl": "openssl",
}


def apt_install(packages: list[str], what: str, *, options: tuple[str, ...] = ()) -> None:
    """Install Debian packages of DEBIAN_PACKAGES when root; otherwise stop, saying what to install."""
    unknown = [package for package in packages if package not in DEBIAN_PACKAGES]
    if unknown:
        die(f"{' '.join(unknown)}: not in DEBIAN_PACKAGES; add it there (and to docs/operations.md) first")
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        die(
            f"{what} not found: install it (e.g. `sudo apt-get install -y {' '.join([*options, *packages])}`)"
        )
    log(f"{what} not found, installing {' '.join(packages)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(["apt-get", "update"], env=env)
    run(["apt-get", "install", "-y", *options, *packages], env=env)


def install_browser() -> Path:
    """Debian's Chromium and ChromeDriver for the browser tests; never a browser from elsewhere."""
    if not (Path("/usr/bin/chromium").exists() and Path("/usr/bin/chromedriver").exists()):
        apt_install(["chromium", "chromium-driver"], "Chromium", options=("--no-install-recommends",))
    return Path("/usr/bin/chromium")


def install_openssl() -> Path:
    """The `openssl` command, with which the cluster profiles make their TLS certificates."""
    if not shutil.which("openssl"):
        apt_install(["openssl"], "openssl")
    return Path(shutil.which("openssl") or die("openssl installed, but still not on PATH"))


# ---- Kafka -------------------------------------------------------------------------------------

POM = repo_root() / "deploy" / "kafka" / "pom.xml"


def kafka_version() -> str:
    """The Kafka version pinned in deploy/kafka/pom.xml."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    return ET.parse(POM).getroot().findtext("m:properties/m:kafka.version", namespaces=ns).strip()


def kafka_libs() -> Path:
    return repo_root() / ".cache" / "kafka" / kafka_version() / "libs"


def install_kafka() -> Path:
    """Copy Kafka's jars into the cache with Maven; skipped while they match the pom."""
    libs = kafka_libs()
    stamp = hashlib.sha256(POM.read_bytes()).hexdigest()
    marker = libs / ".pom-sha256"
    if marker.is_file() and marker.read_text().strip() == stamp:
        return libs
    for package in ("openjdk-17-jre-headless", "maven"):
        if not shutil.which(DEBIAN_PACKAGES[package]):
            apt_install([package], DEBIAN_PACKAGES[package])
    log(f"resolving Kafka {kafka_version()} from Maven Central into {libs}")
    staging = libs.with_name("libs.partial")
    shutil.rmtree(staging, ignore_errors=True)
    run(["mvn", "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={staging}"])
    (staging / ".pom-sha256").write_text(stamp + "\n")
    shutil.rmtree(libs, ignore_errors=True)
    staging.rename(libs)
    return libs


def java_cmd(main: str, *args: str, jvm: list[str]) -> list[str]:
    """A `java` command line running `main` from the cached Kafka jars."""
    return ["java", *jvm, "-cp", f"{kafka_libs()}/*", main, *args]


def log4j_config(log_file: Path) -> str:
    """A Kafka node's log4j2 configuration: info to ``log_file``, rolled at 20 MB, three kept."""
    return f"""\
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="warn">
  <Appenders>
    <RollingFile name="file" fileName="{log_file}" filePattern="{log_file}.%i">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
      <SizeBasedTriggeringPolicy size="20 MB"/>
      <DefaultRolloverStrategy max="3"/>
    </RollingFile>
  </Appenders>
  <Loggers>
    <Root level="info"><AppenderRef ref="file"/></Root>
    <Logger name="kafka.request.logger" level="warn"/>
    <Logger name="state.change.logger" level="warn"/>
  </Loggers>
</Configuration>
"""


def kafka_properties(p: Profile, cores: int) -> dict[str, str]:
    """The single node's server.properties for a machine of ``cores`` cores."""
    return {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{HOST}:{p.controller_port}",
        "listeners": f"PLAINTEXT://{HOST}:{p.kafka_port},CONTROLLER://{HOST}:{p.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{p.kafka_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(p.kafka_dir / "data"),
        **kafka_threads(cores),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "auto.create.topics.enable": "false",
        "group.initial.rebalance.delay.ms": "0",
        # Single node: internal topics with RF 1 and few partitions (fast first use).
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "4",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "transaction.state.log.num.partitions": "4",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "log.retention.hours": "48",
        "log.segment.bytes": str(64 * 1024 * 1024),
        "log.cleaner.dedupe.buffer.size": str(CLEANER_DEDUPE_BYTES),
    }


def write_kafka_config(p: Profile) -> Path:
    """(Re)generate server.properties and log4j2.xml; returns server.properties."""
    p.kafka_dir.mkdir(parents=True, exist_ok=True)
    server = p.kafka_dir / "server.properties"
    lines = [f"{key}={value}\n" for key, value in kafka_properties(p, machine_cores()).items()]
    server.write_text("# Generated by deploy/local/infra.py on every start.\n" + "".join(lines))
    (p.kafka_dir / "log4j2.xml").write_text(log4j_config(p.log_dir / "kafka.log"))
    return server


def new_cluster_id() -> str:
    """A random Kafka cluster id: URL-safe base64 of a UUID, not starting with '-' (as Kafka's)."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cid.startswith("-"):
            return cid


def kafka_ready(port: int, timeout: float = 2.0) -> bool:
    """True if the broker on HOST:port answers a Metadata (v4) request listing a broker."""
    client = b"millrace-infra"
    header = struct.pack(">hhih", 3, 4, 1, len(client)) + client  # api key 3 = Metadata, v4, corr. id 1
    body = struct.pack(">i?", -1, False)  # all topics, no auto-creation
    request = header + body
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            with sock.makefile("rb") as stream:
                (size,) = struct.unpack(">i", stream.read(4))
                response = stream.read(size)
        _correlation_id, _throttle_ms, brokers = struct.unpack_from(">iii", response)
        return brokers > 0
    except (OSError, struct.error):
        return False


def kafka_pid(p: Profile) -> int | None:
    return read_pid(p.run_dir / "kafka.pid")


def gc_log_option(path: Path) -> str:
    """The JVM option that logs every collection and its pause to ``path`` (three files of 10 MB at
    most), as Kafka's own start script does: a broker's pause stalls every produce and fetch."""
    return f"-Xlog:gc:file={path}:time,uptime:filecount=3,filesize=10m"


def start_kafka(p: Profile) -> int:
    """Format the storage if needed and launch the broker detached; returns its pid."""
    server = write_kafka_config(p)
    p.log_dir.mkdir(parents=True, exist_ok=True)
    log4j = f"-Dlog4j2.configurationFile={p.kafka_dir / 'log4j2.xml'}"
    if not (p.kafka_dir / "data" / "meta.properties").exists():
        log("formatting Kafka storage")
        run(java_cmd(STORAGE_TOOL_MAIN, "format", "-t", new_cluster_id(), "-c", str(server), jvm=[log4j]))
    jvm = [*KAFKA_JVM, gc_log_option(p.log_dir / "kafka-gc.log"), log4j, f"-Dkafka.logs.dir={p.log_dir}"]
    cmd = java_cmd(KAFKA_MAIN, str(server), jvm=jvm)
    pid = spawn_detached(cmd, p.log_dir / "kafka.out", p.run_dir / "kafka.pid")
    log(f"Kafka starting (pid {pid}) on {HOST}:{p.kafka_port}")
    return pid


def wait_kafka(p: Profile, pid: int) -> None:
    """Wait until the broker serves metadata; on failure stop it and show its logs."""
    deadline = time.monotonic() + KAFKA_START_TIMEOUT
    while not kafka_ready(p.kafka_port):
        if not pid_alive(pid) or time.monotonic() > deadline:
            stop_pid_file(p.run_dir / "kafka.pid", timeout=10)
            out, server_log = p.log_dir / "kafka.out", p.log_dir / "kafka.log"
            die(
                f"Kafka did not become ready on {HOST}:{p.kafka_port}\n"
                f"--- {out}:\n{tail(out)}\n--- {server_log}:\n{tail(server_log)}"
            )
        time.sleep(0.5)
    log(f"Kafka ready on {HOST}:{p.kafka_port}")


# ---- PostgreSQL --------------------------------------------------------------------------------


def pg_bindir() -> Path | None:
    """Directory with initdb and pg_ctl: pg_config's, else the newest Debian one, else PATH's."""
    candidates = []
    if shutil.which("pg_config"):
        candidates.append(Path(run(["pg_config", "--bindir"], check=False).stdout.strip()))
    versions = [Path(d) for d in glob.glob("/usr/lib/postgresql/*/bin") if Path(d).parent.name.isdigit()]
    candidates += sorted(versions, key=lambda d: int(d.parent.name), reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    return next((d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


def install_postgres() -> Path:
    """The PostgreSQL server binaries' directory, installing them first if missing."""
    bindir = pg_bindir()
    if bindir is None:
        apt_install(["postgresql"], "PostgreSQL server (initdb, pg_ctl)")
        bindir = pg_bindir() or die("PostgreSQL installed, but initdb/pg_ctl still not found")
    return bindir


def pg_server(tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run initdb/pg_ctl; PostgreSQL refuses root, so as the `postgres` user when we are root."""
    cmd = [str(install_postgres() / tool), *args]
    return run(["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd, check, cwd="/")


def give_to_pg_owner(*paths: Path) -> None:
    """When root, hand the files/directories the server writes to the `postgres` user."""
    if os.geteuid() != 0:
        return
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        die("running as root needs a `postgres` system user (created by the postgresql package)")
    for path in paths:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def pg_running(p: Profile) -> bool:
    if pg_bindir() is None or not (p.pg_dir / "PG_VERSION").exists():
        return False
    return pg_server("pg_ctl", "status", "-D", str(p.pg_dir), check=False).returncode == 0


def start_postgres(p: Profile) -> None:
    """initdb if needed, then start the server (pg_ctl -w waits until it accepts connections)."""
    p.log_dir.mkdir(parents=True, exist_ok=True)
    logfile = p.log_dir / "postgres.log"
    logfile.touch()
    if not (p.pg_dir / "PG_VERSION").exists():
        log(f"initialising PostgreSQL cluster in {p.pg_dir}")
        p.pg_dir.mkdir(parents=True, exist_ok=True)
        give_to_pg_owner(p.pg_dir)
        pg_server("initdb", "-D", str(p.pg_dir), "-U", DB_USER, "--auth=trust", "-E", "UTF8", "--no-locale")
    give_to_pg_owner(logfile)
    # The unix socket goes into the data directory, not /var/run/postgresql.
    options = f"-c listen_addresses={HOST} -p {p.pg_port} -k {shlex.quote(str(p.pg_dir))}"
    pg_server("pg_ctl", "start", "-D", str(p.pg_dir), "-l", str(logfile), "-w", "-t", "60", "-o", options)
    log(f"PostgreSQL started on {HOST}:{p.pg_port}")


def ensure_database(p: Profile) -> None:
    """Create the application database if it does not exist yet."""
    psql = [str(install_postgres() / "psql"), "-h", HOST, "-p", str(p.pg_port), "-U", DB_USER]
    psql += ["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-qtAc"]
    if run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"]).stdout.strip() != "1":
        run([*psql, f'CREATE DATABASE "{DB_NAME}"'])
        log(f"created database {DB_NAME}")


def stop_postgres(p: Profile) -> None:
    if pg_running(p):
        pg_server("pg_ctl", "stop", "-D", str(p.pg_dir), "-m", "fast", "-w")
        log("PostgreSQL stopped")


# ---- Prometheus --------------------------------------------------------------------------------

PROMETHEUS_CONFIG_DIR = repo_root() / "deploy" / "prometheus"
POLICY_RC_D = Path("/usr/sbin/policy-rc.d")
SYSTEM_PROMETHEUS_PORT = 9090


@contextlib.contextmanager
def services_not_started() -> Iterator[None]:
    """While packages install, their maintainer scripts may not start services (Debian's policy-rc.d
    protocol: exit 101 means "not allowed"). A policy file already in place is left as it is."""
    if POLICY_RC_D.exists():
        yield
        return
    POLICY_RC_D.write_text(
        "#!/bin/sh\n# Written by deploy/local/infra.py while it installs packages.\nexit 101\n"
    )
    POLICY_RC_D.chmod(0o755)
    try:
        yield
    finally:
        POLICY_RC_D.unlink(missing_ok=True)


def keep_system_prometheus_off() -> None:
    """Debian's package enables a system-wide Prometheus listening on every interface (port 9090);
    this project runs its own per profile on 127.0.0.1, so the system one is disabled and stopped."""
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl"):
        run(["systemctl", "disable", "--now", "prometheus.service"], check=False)
    else:
        # Without a running systemd: disable the unit for a later boot with one, and the init script.
        if shutil.which("systemctl"):
            run(["systemctl", "disable", "prometheus.service"], check=False)
        if shutil.which("update-rc.d"):
            run(["update-rc.d", "prometheus", "disable"], check=False)
        if Path("/etc/init.d/prometheus").exists():
            run(["/etc/init.d/prometheus", "stop"], check=False)
    if wait_tcp(HOST, SYSTEM_PROMETHEUS_PORT, 0):
        log(f"note: something still listens on port {SYSTEM_PROMETHEUS_PORT} (not started by this project)")


def install_prometheus() -> Path:
    """Debian's `prometheus` binary (promtool comes with it), installing the package if missing."""
    found = shutil.which("prometheus")
    if found and shutil.which("promtool"):
        return Path(found)
    with services_not_started():
        apt_install(["prometheus"], "Prometheus", options=("--no-install-recommends",))
    keep_system_prometheus_off()
    return Path(shutil.which("prometheus") or die("Prometheus installed, but `prometheus` still not on PATH"))


SERVICE_PORTS: dict[str, int] = {
    "gateway": 18080,
    "trigger": 18081,
    "orchestrator": 18082,
    "node-runner": 18083,
    "approval": 18084,
}
"""Each service's HTTP port in the dev profile: deploy/local/services.py starts them there, and the
Prometheus started here scrapes them there."""


def service_ports(p: Profile) -> dict[str, list[int]]:
    """Every instance's HTTP port of every service in profile `p` (instance 0 first)."""
    return {
        name: [p.http_port + 10 * instance + k for instance in range(p.instances)]
        for k, name in enumerate(SERVICE_PORTS)
    }


def scrape_targets(p: Profile | None = None) -> dict[str, list[int]]:
    return service_ports(p or PROFILES["dev"])


def prometheus_config(
    targets: dict[str, int] | dict[str, list[int]], *, scrape_interval: str, rule_files: list[Path]
) -> str:
    """A Prometheus configuration scraping `targets` (service name to the port, or ports of each
    instance, on 127.0.0.1), one job per installation with a `service` label per target (instances
    of one service share it; Prometheus's `instance` label tells them apart). JSON is valid YAML,
    so no YAML library."""
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": "millrace",
                "static_configs": [
                    {
                        "targets": [
                            f"{HOST}:{port}" for port in ([ports] if isinstance(ports, int) else ports)
                        ],
                        "labels": {"service": name},
                    }
                    for name, ports in targets.items()
                ],
            }
        ],
    }
    return "# Generated by deploy/local/infra.py on every start.\n" + json.dumps(config, indent=2) + "\n"


def prometheus_cmd(config: Path, data_dir: Path, port: int, retention: str = "7d") -> list[str]:
    """The command line of a Prometheus bound to 127.0.0.1:`port` with its data in `data_dir`."""
    return [
        str(install_prometheus()),
        f"--config.file={config}",
        f"--storage.tsdb.path={data_dir}",
        f"--storage.tsdb.retention.time={retention}",
        f"--web.listen-address={HOST}:{port}",
        "--web.enable-lifecycle",
    ]


def prometheus_ready(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1.0) as sock:
            sock.sendall(f"GET /-/ready HTTP/1.0\r\nHost: {HOST}\r\n\r\n".encode())
            return sock.recv(64).split(b" ")[1:2] == [b"200"]
    except (OSError, IndexError):
        return False


def prometheus_pid(p: Profile) -> int | None:
    return read_pid(p.run_dir / "prometheus.pid")


def start_prometheus(p: Profile) -> None:
    """Write the profile's configuration and start Prometheus detached (if not already running)."""
    rules = sorted((PROMETHEUS_CONFIG_DIR / "rules").glob("*.yml"))
    config = p.prometheus_dir / "prometheus.yml"
    p.prometheus_dir.mkdir(parents=True, exist_ok=True)
    config.write_text(prometheus_config(scrape_targets(p), scrape_interval="5s", rule_files=rules))
    pid = prometheus_pid(p)
    if pid is None:
        ensure_free(p.prometheus_port)
        cmd = prometheus_cmd(config, p.prometheus_dir / "data", p.prometheus_port)
        pid = spawn_detached(cmd, p.log_dir / "prometheus.log", p.run_dir / "prometheus.pid")
        log(f"Prometheus starting (pid {pid}) on {HOST}:{p.prometheus_port}")
    deadline = time.monotonic() + 30
    while not prometheus_ready(p.prometheus_port):
        if not pid_alive(pid) or time.monotonic() > deadline:
            stop_pid_file(p.run_dir / "prometheus.pid", timeout=10)
            die(f"Prometheus did not become ready:\n{tail(p.log_dir / 'prometheus.log')}")
        time.sleep(0.3)
    log(f"Prometheus ready on http://{HOST}:{p.prometheus_port}")


# ---- commands ----------------------------------------------------------------------------------


def cmd_install(only: str | None = None) -> None:
    if only in (None, "kafka"):
        log(f"Kafka {kafka_version()} jars: {install_kafka()}")
    if only in (None, "postgresql"):
        log(f"PostgreSQL binaries: {install_postgres()}")
    if only in (None, "prometheus"):
        log(f"Prometheus: {install_prometheus()}")
    if only in (None, "openssl"):
        log(f"openssl: {install_openssl()}")
    if only == "browser":  # only the browser tests need it, so `make up` does not install it
        log(f"Chromium: {install_browser()}")
    if only == "helm":  # only the chart's checks need it (make test), so `make up` does not build it
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import helm_chart

        log(f"Helm {helm_chart.HELM_VERSION}: {helm_chart.install()}")


def kafka_running(p: Profile) -> bool:
    return bool(cluster_module().running(p) if p.clustered else kafka_pid(p))


def cmd_start(p: Profile) -> None:
    current = get_profile(p.name)
    pid, pg_up = kafka_running(current), pg_running(current)
    if current != p and (pid or pg_up):
        die(
            f"profile {p.name} already runs with Kafka {current.kafka_port} / PostgreSQL "
            f"{current.pg_port}; `stop --profile {p.name}` first to change ports"
        )
    install_kafka()
    install_postgres()
    install_prometheus()
    ensure_free(*(() if pid else p.kafka_ports()), *(() if pg_up else (p.pg_port,)))
    p.run_dir.mkdir(parents=True, exist_ok=True)
    ports = {
        "kafka_port": p.kafka_port,
        "pg_port": p.pg_port,
        "prometheus_port": p.prometheus_port,
        "http_port": p.http_port,
    }
    (p.run_dir / "ports.json").write_text(json.dumps(ports))
    if pg_up:
        log(f"PostgreSQL already running on {HOST}:{p.pg_port}")
    else:
        start_postgres(p)
    ensure_database(p)
    if p.clustered:
        cluster_module().start(p)
    else:
        if pid:
            log(f"Kafka already running (pid {pid})")
        wait_kafka(p, kafka_pid(p) or start_kafka(p))
    for key, value in p.env().items():
        print(f"{key}={value}")


def cmd_stop(p: Profile) -> None:
    if p.clustered:
        cluster_module().stop(p)
    elif stop_pid_file(p.run_dir / "kafka.pid", timeout=30):
        log("Kafka stopped")
    if stop_pid_file(p.run_dir / "prometheus.pid", timeout=15):
        log("Prometheus stopped")
    stop_postgres(p)
    (p.run_dir / "ports.json").unlink(missing_ok=True)


def cmd_status(p: Profile) -> None:
    print(f"profile {p.name} ({p.data_dir})")
    if p.clustered:
        print("\n".join(cluster_module().status_lines(p)))
    else:
        pid = kafka_pid(p)
        kafka = "stopped"
        if pid:
            kafka = f"running (pid {pid}), {'ready' if kafka_ready(p.kafka_port) else 'NOT answering'}"
        print(f"  kafka     {HOST}:{p.kafka_port}  {kafka}")
    print(f"  postgres  {HOST}:{p.pg_port}  {'running' if pg_running(p) else 'stopped'}")
    prometheus = "stopped"
    if pid := prometheus_pid(p):
        prometheus = (
            f"running (pid {pid}), {'ready' if prometheus_ready(p.prometheus_port) else 'NOT answering'}"
        )
    print(f"  prometheus http://{HOST}:{p.prometheus_port}  {prometheus}")


def cmd_reset(p: Profile) -> None:
    cmd_stop(p)
    shutil.rmtree(p.data_dir, ignore_errors=True)
    log(f"removed {p.data_dir}")


def cmd_prometheus(p: Profile) -> None:
    """Start the profile's Prometheus (after the services: it scrapes their ports) and print its address."""
    start_prometheus(p)
    saved = p.run_dir / "ports.json"
    if saved.is_file():
        saved.write_text(json.dumps({**json.loads(saved.read_text()), "prometheus_port": p.prometheus_port}))
    print(f"MILLRACE_PROMETHEUS_URL=http://{HOST}:{p.prometheus_port}")


PROFILE_COMMANDS = {
    "start": cmd_start,
    "prometheus": cmd_prometheus,
    "stop": cmd_stop,
    "status": cmd_status,
    "reset": cmd_reset,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser(
        "install", help="fetch the Kafka jars, ensure the PostgreSQL and Prometheus binaries"
    )
    install.add_argument(
        "--only", choices=("kafka", "postgresql", "prometheus", "openssl", "browser", "helm")
    )
    for name in PROFILE_COMMANDS:
        command = commands.add_parser(name)
        command.add_argument("--profile", choices=sorted(PROFILES), required=True)
        if name == "start":
            command.add_argument(
                "--kafka-port", type=int, help="(the controller uses the next port; a cluster the next five)"
            )
            command.add_argument("--pg-port", type=int)
            command.add_argument("--http-port", type=int, help="the services' first port (services.py)")
        if name in ("start", "prometheus"):
            command.add_argument("--prometheus-port", type=int)
    args = parser.parse_args(argv)
    if args.command == "install":
        cmd_install(args.only)
        return
    lock = contextlib.nullcontext() if args.command == "status" else profile_lock(args.profile)
    with lock:  # saved ports are read under the lock
        names = ("kafka_port", "pg_port", "prometheus_port", "http_port")
        ports = [getattr(args, name, None) for name in names]
        PROFILE_COMMANDS[args.command](get_profile(args.profile, *ports))


if __name__ == "__main__":
    main()
