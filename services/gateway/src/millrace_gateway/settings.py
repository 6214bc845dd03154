from millrace_common.platform.auth import AUDIENCE, ISSUER
from millrace_common.platform.settings import CodeSandboxSettings
from pydantic import Field, SecretStr


class GatewaySettings(CodeSandboxSettings):
    service_name: str = "gateway"
    http_port: int = 18080
    jwt_secret: SecretStr | None = Field(default=None, description="HMAC key for the API's access tokens")
    jwt_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    public_base_url: str = Field(default="http://127.0.0.1:18080", description="Where callers reach this API")
    live_heartbeat_seconds: float = Field(
        default=15.0, gt=0, le=300, description="Comment lines on quiet live streams"
    )
    live_run_wait_seconds: float = Field(
        default=3.0,
        ge=0,
        le=60,
        description="How long a run's stream waits for a run just asked for to be logged",
    )
    live_inbox_size: int = Field(
        default=1000, ge=10, description="Events a slow live stream may fall behind by"
    )
    live_feed_pause_seconds: float = Field(
        default=30,
        ge=0.1,
        le=3600,
        description="How long the live feed goes on reading run events after the last stream closed",
    )
    webhook_response_max_wait_seconds: float = Field(
        default=30,
        ge=0,
        le=300,
        description="The longest a webhook call waits for its run's respond_to_webhook node (a "
        "workflow's webhook_response_wait_seconds is capped by it; 0: no call waits)",
    )
    webhook_target_fresh_seconds: float = Field(
        default=1,
        ge=0,
        le=60,
        description="How long a webhook address's workflow, once read, answers calls from memory: a "
        "change made through this gateway applies at once, one made through another gateway within "
        "this time (0: every call reads it)",
    )
    operator_tenant: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The platform operators' tenant: its admins see and act on every tenant's dead "
        "letters (and those naming no tenant); unset, every admin sees only their own tenant's",
    )
    bulk_runs_max: int = Field(
        default=1000,
        ge=1,
        le=10_000,
        description="The most runs one bulk retry or cancel (POST /api/v1/runs/bulk) acts on",
    )
    bulk_token_ttl_seconds: int = Field(
        default=300, ge=10, le=3600, description="How long a bulk operation's confirmation token is valid"
    )
    kafka_grant_acls: bool = Field(
        default=True,
        description="Whether topic grants made through the admin API are applied to the broker as ACLs at"
        " once (off where the broker has no authorizer: the grants are kept and 'millrace-admin grants"
        " sync' applies them later)",
    )
    approval_api_url: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Where the gateway reaches the approval service's API, to forward the web app's "
        "/api/v1/approvals calls (e.g. http://127.0.0.1:18084); unset, those calls answer 503",
    )
    kafka_tools_classpath: str | None = Field(
        default=None,
        description="Java classpath of Kafka's own tools, which millrace-admin grants and producers run"
        " (e.g. '/opt/kafka/libs/*'); unset, the jars of deploy/local (.cache/kafka/<version>/libs)",
    )


PRODUCER = "gateway"
"""This service's name on the outbox rows it writes."""
WEBHOOK_PRODUCER = "gateway-webhooks"
"""The name on the rows of accepted webhook calls (their live relay tags them per instance)."""

JWT_ISSUER = ISSUER
JWT_AUDIENCE = AUDIENCE
