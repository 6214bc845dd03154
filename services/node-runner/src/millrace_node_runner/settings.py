from millrace_common.platform.settings import CodeSandboxSettings
from pydantic import Field

PRODUCER = "node-runner"
"""This service's name on the outbox rows it writes."""


class NodeRunnerSettings(CodeSandboxSettings):
    service_name: str = "node-runner"
    http_port: int = 18083
    # Slots per runner class: a class whose slots are all taken stops fetching, the others go on.
    ai_concurrency: int = Field(default=16, ge=1, le=1024, description="AI nodes run at once by one process")
    http_concurrency: int = Field(default=64, ge=1, le=1024, description="HTTP and webhook nodes run at once")
    record_concurrency: int = Field(default=16, ge=1, le=1024, description="Record nodes run at once")
    other_concurrency: int = Field(
        default=8, ge=1, le=1024, description="Other nodes (task_notify) run at once"
    )
    http_response_cap_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Ceiling on any node's response_cap_bytes"
    )
    network_policy_cache_seconds: float = Field(
        default=5,
        ge=0,
        le=300,
        description="How long a tenant's network policy is kept before it is read again",
    )
    http_max_idle_connections: int = Field(
        default=16, ge=1, description="Idle keep-alive connections kept per network policy's pool"
    )
    http_max_redirects: int = Field(default=5, ge=0, le=20)
    max_causation_depth: int = Field(
        default=5,
        ge=1,
        le=100,
        description="Record changes carry how many workflow runs led to them; a record node refuses a change "
        "deeper than this, which ends a chain of workflows triggering each other",
    )
    record_find_max_scan: int = Field(
        default=10_000, ge=100, description="Records a record_find may examine before it gives up"
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000, ge=6_000, description="How soon the group notices a runner that died without leaving"
    )
    drain_seconds: float = Field(
        default=10, ge=0, description="On shutdown, how long running nodes may finish"
    )
    revoke_drain_seconds: float = Field(
        default=5, ge=0, description="On a rebalance, how long running nodes of revoked partitions may finish"
    )
    runner_retention_days: float = Field(
        default=30,
        gt=0,
        description="Attempts' recorded results and AI answers of ended runs older than this are pruned "
        "(keep it longer than nodes.ready.* keep messages)",
    )
    ai_usage_retention_days: float = Field(
        default=400, gt=0, description="Rows of the AI token ledger older than this are pruned"
    )
    task_retention_days: float = Field(default=90, gt=0, description="Done tasks older than this are pruned")
    notification_retention_days: float = Field(
        default=30, gt=0, description="Notifications delivered or given up longer ago than this are pruned"
    )
    notification_poll_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often new tasks and approval notifications are looked for"
    )
    notification_max_attempts: int = Field(
        default=8, ge=1, le=100, description="Delivery attempts of one notification before it is given up"
    )
    notification_retry_base_seconds: float = Field(
        default=30,
        gt=0,
        le=3600,
        description="The wait after a notification's first failed attempt; doubled after each",
    )
    notification_retry_max_seconds: float = Field(
        default=3600, gt=0, description="The longest wait between two attempts of one notification"
    )
    notification_lookback_hours: float = Field(
        default=24,
        gt=0,
        description="Tasks and approval notifications older than this when first seen are not delivered "
        "(after an outage longer than this, or when a tenant first configures its channels)",
    )
    public_base_url: str = Field(
        default="http://127.0.0.1:18080", description="The web app's address, for links in notifications"
    )
    approval_base_url: str = Field(
        default="http://127.0.0.1:18084",
        description="The approval inbox's address, for links in notifications",
    )
