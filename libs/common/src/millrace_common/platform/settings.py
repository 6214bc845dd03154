"""Typed settings read from ``MILLRACE_*`` environment variables.

Each service subclasses :class:`ServiceSettings` with its own defaults; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, PrivateAttr, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from millrace_common.contracts.limits import MIN_MESSAGE_BYTES
from millrace_common.platform.topic_layout import parse_partition_overrides

_NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaClientSettings(BaseSettings):
    """Where Kafka is and how a client proves who it is: what every Kafka client of Millrace needs
    (``millrace_common.platform.kafka_security.client_options`` turns it into client options). The
    tests and benchmarks read it alone, from the same ``MILLRACE_*`` variables as the services."""

    model_config = SettingsConfigDict(env_prefix="MILLRACE_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(
        default="127.0.0.1:19092",
        description="The brokers to first connect to: a comma-separated list of host:port",
    )
    kafka_security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT",
        description="How clients talk to the brokers: PLAINTEXT, SSL (TLS), SASL_PLAINTEXT or SASL_SSL "
        "(SASL authentication over TLS: what a production cluster wants)",
    )
    kafka_sasl_mechanism: SaslMechanism | None = Field(
        default=None, description="PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512; required with SASL_*"
    )
    kafka_sasl_username: str | None = Field(default=None, min_length=1, description="The SASL user")
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="The SASL user's password (or MILLRACE_KAFKA_SASL_PASSWORD_FILE)"
    )
    kafka_sasl_password_file: Path | None = Field(
        default=None,
        description="A file holding the SASL password (a mounted secret), read once at start; trailing "
        "line breaks are dropped",
    )
    kafka_ssl_ca_file: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the brokers' certificates; unset, the system's "
        "trust store",
    )
    kafka_ssl_cert_file: Path | None = Field(
        default=None, description="PEM client certificate, for brokers that require TLS client auth"
    )
    kafka_ssl_key_file: Path | None = Field(
        default=None, description="PEM private key of the client certificate (unencrypted)"
    )
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Replicas of every topic millrace-topics creates (3 on a production cluster)",
    )
    kafka_min_insync_replicas: int = Field(
        default=1,
        ge=1,
        le=32,
        description="min.insync.replicas of every topic millrace-topics creates or reshapes: with "
        "acks=all, a write fails rather than land on fewer replicas (2 with a replication factor of 3)",
    )

    _sasl_password_from_file: SecretStr | None = PrivateAttr(default=None)

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_is_a_host_list(cls, value: str) -> str:
        servers = bootstrap_servers(value)
        if not servers:
            raise ValueError("MILLRACE_KAFKA_BOOTSTRAP names no broker: give host:port[,host:port...]")
        for server in servers:
            host, _, port = server.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"MILLRACE_KAFKA_BOOTSTRAP: {server!r} is not host:port")
        return ",".join(servers)

    @model_validator(mode="after")
    def _security_is_complete(self) -> KafkaClientSettings:
        problems = kafka_security_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        if self.kafka_sasl_password_file is not None:
            self._sasl_password_from_file = SecretStr(_read_secret(self.kafka_sasl_password_file))
        return self

    @property
    def kafka_bootstrap_servers(self) -> list[str]:
        """The bootstrap brokers one by one."""
        return bootstrap_servers(self.kafka_bootstrap)

    @property
    def kafka_sasl_secret(self) -> SecretStr | None:
        """The SASL password, given directly or read from its file at start."""
        return self.kafka_sasl_password or self._sasl_password_from_file


def bootstrap_servers(value: str) -> list[str]:
    return [server.strip() for server in value.split(",") if server.strip()]


def kafka_security_problems(settings: KafkaClientSettings) -> list[str]:
    """What makes these Kafka security settings unusable, each naming its variable (empty when sound)."""
    protocol = settings.kafka_security_protocol
    sasl = protocol.startswith("SASL_")
    tls = protocol in ("SSL", "SASL_SSL")
    problems = []
    if sasl:
        if settings.kafka_sasl_mechanism is None:
            problems.append(
                f"MILLRACE_KAFKA_SECURITY_PROTOCOL is {protocol}: set MILLRACE_KAFKA_SASL_MECHANISM "
                "(PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)"
            )
        if settings.kafka_sasl_username is None:
            problems.append(
                f"MILLRACE_KAFKA_SECURITY_PROTOCOL is {protocol}: set MILLRACE_KAFKA_SASL_USERNAME"
            )
        given = (settings.kafka_sasl_password is not None, settings.kafka_sasl_password_file is not None)
        if given == (False, False):
            problems.append(
                f"MILLRACE_KAFKA_SECURITY_PROTOCOL is {protocol}: set MILLRACE_KAFKA_SASL_PASSWORD or "
                "MILLRACE_KAFKA_SASL_PASSWORD_FILE"
            )
        elif given == (True, True):
            problems.append(
                "MILLRACE_KAFKA_SASL_PASSWORD and MILLRACE_KAFKA_SASL_PASSWORD_FILE are both set: keep one"
            )
    else:
        for name, value in (
            ("MILLRACE_KAFKA_SASL_MECHANISM", settings.kafka_sasl_mechanism),
            ("MILLRACE_KAFKA_SASL_USERNAME", settings.kafka_sasl_username),
            ("MILLRACE_KAFKA_SASL_PASSWORD", settings.kafka_sasl_password),
            ("MILLRACE_KAFKA_SASL_PASSWORD_FILE", settings.kafka_sasl_password_file),
        ):
            if value is not None:
                problems.append(
                    f"{name} is set but MILLRACE_KAFKA_SECURITY_PROTOCOL is {protocol}, which does not "
                    "authenticate: use SASL_SSL (or SASL_PLAINTEXT), or unset it"
                )
    files = (
        ("MILLRACE_KAFKA_SSL_CA_FILE", settings.kafka_ssl_ca_file),
        ("MILLRACE_KAFKA_SSL_CERT_FILE", settings.kafka_ssl_cert_file),
        ("MILLRACE_KAFKA_SSL_KEY_FILE", settings.kafka_ssl_key_file),
        ("MILLRACE_KAFKA_SASL_PASSWORD_FILE", settings.kafka_sasl_password_file),
    )
    for name, path in files:
        if path is None:
            continue
        if not tls and name.startswith("MILLRACE_KAFKA_SSL_"):
            problems.append(
                f"{name} is set but MILLRACE_KAFKA_SECURITY_PROTOCOL is {protocol}, which does not use "
                "TLS: use SSL or SASL_SSL, or unset it"
            )
        elif (reason := _unreadable(path)) is not None:
            problems.append(f"{name}: cannot read {path}: {reason}")
    if settings.kafka_ssl_key_file is not None and settings.kafka_ssl_cert_file is None:
        problems.append("MILLRACE_KAFKA_SSL_KEY_FILE is set without MILLRACE_KAFKA_SSL_CERT_FILE")
    if settings.kafka_min_insync_replicas > settings.kafka_replication_factor:
        problems.append(
            f"MILLRACE_KAFKA_MIN_INSYNC_REPLICAS ({settings.kafka_min_insync_replicas}) exceeds "
            f"MILLRACE_KAFKA_REPLICATION_FACTOR ({settings.kafka_replication_factor}): no write could succeed"
        )
    return problems


def _unreadable(path: Path) -> str | None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as error:
        return error.strerror or type(error).__name__
    return None


def _read_secret(path: Path) -> str:
    secret = path.read_text().rstrip("\r\n")
    if not secret:
        raise ValueError(f"MILLRACE_KAFKA_SASL_PASSWORD_FILE: {path} is empty")
    return secret


class ServiceSettings(KafkaClientSettings):
    """Settings every service has: where Kafka and PostgreSQL are, where to listen, how to tune."""

    model_config = SettingsConfigDict(env_prefix="MILLRACE_", extra="ignore", frozen=True)

    service_name: str = "millrace"
    database_url: str = "postgresql+psycopg://millrace@127.0.0.1:15432/millrace"
    namespace: str = Field(
        default="",
        description="Isolates one installation (or one test) from another on the same Kafka and "
        "PostgreSQL: prefixes topic and consumer-group names and selects the database schema.",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    log_file: str = Field(
        default="",
        description="Write the JSON lines to this file, rotated by size, instead of to stderr (which a "
        "container's runtime collects and rotates). `make up` sets it to .data/dev/logs/<service>.log.",
    )
    log_file_max_mb: int = Field(
        default=64,
        ge=1,
        description="Size at which the log file is rotated to <file>.1 (and <file>.1 to <file>.2, ...).",
    )
    log_file_backups: int = Field(default=3, ge=1, description="How many rotated files are kept.")
    # How long a fetch waits at the broker (millrace_common.platform.fetch_wait). A fetch is answered
    # as soon as one of its partitions has data, but a partition whose records are still buffered (or
    # that is paused) is left out of the fetch in flight: data arriving there waits for that fetch to
    # end, so such a fetch waits the short time. 5 ms kept an idle orchestrator spinning at 17 % of a
    # core, 100 ms doubled the half-load p99; 20 ms kept the latency of 5 ms.
    kafka_fetch_max_wait_ms: int = 20
    kafka_full_fetch_max_wait_ms: int = Field(
        default=1000,
        ge=1,
        description="How long a fetch that holds every partition its consumer reads from that broker "
        "waits (records reaching any of them end it at once; what the client changes while it is out, "
        "a seek or a metadata lookup, waits for it; millrace_common.platform.fetch_wait)",
    )
    kafka_linger_ms: int = Field(
        default=0,
        ge=0,
        description="How long a producer waits for more messages before sending a batch. 0: every hop of "
        "a run (a node's result, the next node's command) goes at once; under load messages batch anyway, "
        "since a producer has one request in flight per broker and what arrives meanwhile goes in the next",
    )
    kafka_max_poll_records: int = Field(
        default=100,
        ge=1,
        description="The most records a consumer takes in one poll, so the most messages one batch "
        "handles: a batch's run states, events and statement are in memory at once, and a process keeps "
        "the memory of its biggest batch (500 left the orchestrator 45 MB larger after a burst, for no "
        "more throughput: docs/benchmarks.md)",
    )
    kafka_batch_timeout_ms: int = 100
    kafka_max_message_bytes: int = Field(
        default=MIN_MESSAGE_BYTES,
        ge=MIN_MESSAGE_BYTES,
        description="The largest message a service produces; every topic must accept it (checked at "
        "start against the broker's max.message.bytes). Payloads are limited to 934,464 bytes whatever "
        "this is (millrace_common.contracts.limits).",
    )
    db_pool_size: int = 10
    db_max_connections: int = Field(
        default=6,
        ge=4,  # the orchestrator's least: two direct connections, one for retention, one for the engine
        description="The most PostgreSQL connections one process opens, all its pools together (the "
        "SQLAlchemy engine gets what the service's direct pools leave, at most MILLRACE_DB_POOL_SIZE); "
        "PostgreSQL's max_connections must hold every process's budget (docs/operations.md)",
    )
    db_search_path_from_role: bool = Field(
        default=False,
        description="A namespaced installation whose database role already has the namespace as its "
        "search_path (ALTER ROLE ... SET search_path): connections set nothing, as PgBouncer in "
        "transaction mode needs",
    )
    dead_letter_partitions: int = Field(
        default=3,
        ge=1,
        le=64,
        description="Partitions of each <topic>.dlq that millrace-topics creates (and grows existing ones "
        "to); dead letters are rare, so a few are enough to spread a burst over the brokers",
    )
    dead_letter_retention_ms: int = Field(
        default=30 * 24 * 3600 * 1000,
        ge=3600 * 1000,
        description="retention.ms of each <topic>.dlq (30 days by default): how long a dead letter can "
        "still be replayed; millrace-topics sets it on new and existing dead-letter topics",
    )
    kafka_partitions: int | None = Field(
        default=None,
        ge=1,
        le=1000,
        description="Partitions of every topic millrace-topics creates (dead-letter topics aside); unset, "
        "each topic's count in the registry (contracts/topics.py: 6, and 3 for nodes.ready.*)",
    )
    kafka_topic_partitions: str = Field(
        default="",
        description="Partitions per topic or family over MILLRACE_KAFKA_PARTITIONS: comma-separated "
        "pattern=count, e.g. nodes.ready.*=12,runs.commands=12; the last matching entry wins",
    )
    kafka_retention_ms: int | None = Field(
        default=None,
        ge=3600 * 1000,
        description="retention.ms of the topics millrace-topics creates or reshapes (dead-letter topics "
        "have their own); unset, the broker's default (7 days unless the broker says otherwise)",
    )
    fault_marker: str | None = Field(
        default=None,
        min_length=8,
        description="Tests only: a consumer fails to handle any message whose bytes contain this text, "
        "as if its handler broke on it (the fault drills and the poison tests use it). Unset in production.",
    )
    retention_interval_seconds: float = Field(
        default=3600,
        gt=0,
        description="How often a service prunes what it keeps only for a while (each its own tables)",
    )
    metrics_interval_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often gauges read from PostgreSQL and Kafka (lag, backlogs) are refreshed",
    )
    metrics_per_workflow: bool = Field(
        default=False,
        description=(
            "Also count runs per workflow: one series per workflow, so only for installations with few"
        ),
    )
    readiness_assignment_seconds: float = Field(
        default=30.0,
        gt=0,
        description="/readyz fails when a Kafka consumer has held no partition assignment this long (since "
        "the start or since it lost its assignment), or when a topic it reads has not existed this long",
    )
    readiness_progress_seconds: float = Field(
        default=120.0,
        gt=0,
        description="/readyz fails when a partition a consumer holds has lag and its committed position has "
        "not moved this long (above the longest a message may take to handle, a node's run included)",
    )
    readiness_sample_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often each consumer's assignment, committed offsets and end offsets are sampled "
        "for /readyz",
    )
    outbox_vacuum_seconds: float = Field(
        default=5.0,
        ge=0,
        le=3600,
        description="How often the process may vacuum the outbox, a queue whose rows die as fast as "
        "they are written (millrace_common.platform.outbox_vacuum; a turn skips while another vacuum "
        "holds the table); 0 never",
    )
    memory_trim_seconds: float = Field(
        default=30.0,
        ge=0,
        description="How often the process hands the C heap's free pages back to the system "
        "(glibc's malloc_trim; millrace_common.platform.memory); 0 never",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Fernet key (urlsafe base64 of 32 bytes) that encrypts tenant secrets at rest",
    )

    @field_validator("namespace")
    @classmethod
    def _namespace_is_identifier(cls, value: str) -> str:
        if value and not _NAMESPACE.match(value):
            raise ValueError("namespace must be lower-case letters, digits and '_', starting with a letter")
        return value

    @field_validator("kafka_topic_partitions")
    @classmethod
    def _overrides_name_topics(cls, value: str) -> str:
        parse_partition_overrides(value)
        return value

    @property
    def database_schema(self) -> str:
        return self.namespace or "public"


class CodeSandboxSettings(ServiceSettings):
    """The limits of the code node's sandbox, for the services that run code: the node runner (the
    ``code`` node) and the gateway (testing a node). ``docs/node-reference.md`` ("code")."""

    code_cpu_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="Execution time one code node may use (its main() and the code)",
    )
    code_memory_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024 * 1024, description="Heap one code node's execution may use"
    )
    code_output_bytes: int = Field(
        default=256 * 1024, ge=16, le=1024 * 1024, description="Largest JSON a code node's main() may return"
    )
    code_recursion_depth: int = Field(
        default=200, ge=10, le=10_000, description="How deep a code node's calls may nest"
    )
    code_concurrency: int = Field(
        default=2,
        ge=1,
        le=256,
        description="Code nodes run at once by one process: the sandbox's worker processes (and the runner's "
        "lane slots for nodes.ready.code)",
    )
