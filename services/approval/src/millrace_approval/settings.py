from millrace_common.platform.settings import ServiceSettings
from pydantic import Field, SecretStr

PRODUCER = "approval"
"""This service's name on the outbox rows it writes."""


class ApprovalSettings(ServiceSettings):
    service_name: str = "approval"
    http_port: int = 18084
    jwt_secret: SecretStr | None = Field(
        default=None, description="The gateway's HMAC key: verifies its tokens and signs inbox sessions"
    )
    session_ttl_seconds: int = Field(default=8 * 3600, ge=60, le=7 * 24 * 3600)
    deadline_poll_seconds: float = Field(
        default=2.0, gt=0, le=60, description="How often passed approval deadlines are looked for"
    )
    cookie_secure: bool = Field(
        default=False, description="Mark the inbox session cookie Secure (behind HTTPS)"
    )
    approval_retention_days: float = Field(
        default=365,
        gt=0,
        description="Approvals closed longer ago than this are pruned with their decisions, audit trail "
        "and notifications",
    )
