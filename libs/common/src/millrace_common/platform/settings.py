"""Typed settings read from ``MILLRACE_*`` environment variables.

Each service subclasses :class:`ServiceSettings` with its own defaults; nothing reads the
environment anywhere else.
"""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from millrace_common.contracts.limits import MIN_MESSAGE_BYTES

_NAMESPACE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")


class ServiceSettings(BaseSettings):
    """Settings every service has: where Kafka and PostgreSQL are, where to listen, how to tune."""

    model_config = SettingsConfigDict(env_prefix="MILLRACE_", extra="ignore", frozen=True)

    service_name: str = "millrace"
    kafka_bootstrap: str = "127.0.0.1:19092"
    database_url: str = "postgresql+psycopg://millrace@127.0.0.1:15432/millrace"
    namespace: str = Field(
        default="",
        description="Isolates one installation (or one test) from another on the same Kafka and "
        "PostgreSQL: prefixes topic and consumer-group names and selects the database schema.",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    log_level: str = "INFO"
    # How long an empty fetch or poll waits. A poll returns as soon as records are buffered, so its
    # wait bounds only idle polling. A fetch is answered as soon as one of its partitions has data, but
    # a partition whose records are still buffered is left out of the fetch in flight: data arriving
    # there waits for that fetch to end. 5 ms kept an idle orchestrator spinning at 17 % of a core,
    # 100 ms doubled the half-load p99; 20 ms costs 7 % idle and kept the latency of 5 ms.
    kafka_fetch_max_wait_ms: int = 20
    kafka_idle_fetch_max_wait_ms: int = Field(
        default=500,
        ge=1,
        description="How long a consumer's fetches wait once it has had no records for a second (an "
        "idle consumer's fetch holds every partition, so it is answered as soon as data arrives; "
        "millrace_common.platform.fetch_wait)",
    )
    kafka_linger_ms: int = 1
    kafka_max_poll_records: int = 500
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

    @property
    def database_schema(self) -> str:
        return self.namespace or "public"
