"""The envelope every Kafka message carries."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

TenantId = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Fields common to every message.

    ``correlation_id`` names the run a message belongs to (when there is one); ``causation_id``
    names the message that caused it. Fields are only ever added with defaults; a breaking change
    bumps ``schema_version`` and adds an upcaster.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    message_id: UUID = Field(default_factory=uuid4)
    type: str
    schema_version: int = 1
    tenant_id: TenantId
    occurred_at: datetime = Field(default_factory=utc_now)
    correlation_id: UUID | None = None
    causation_id: UUID | None = None

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()


class DeadLetterCause(StrEnum):
    """Why a message was set aside, in a word: the reason's class (a metric label, a filter)."""

    UNDECODABLE = "undecodable"
    """It does not parse or validate as its topic's message."""
    FAILED = "failed"
    """Handling it kept failing (the poison guard gave up, or the runner could not handle it)."""
    REJECTED = "rejected"
    """It decoded, but names what the consumer does not have (a run, a workflow version)."""
    KAFKA_REFUSED = "kafka_refused"
    """Kafka refused to take it from an outbox (too large, say)."""


class DeadLetter(BaseModel):
    """What a consumer writes to ``<topic>.dlq`` for a message it could not accept."""

    model_config = ConfigDict(frozen=True)

    source_topic: str
    partition: int
    offset: int
    key: str | None
    reason: str
    consumer_group: str
    raw_value: str = Field(description="The original bytes, decoded as UTF-8 with replacement")
    raw_value_base64: str
    headers: dict[str, str] = Field(default_factory=dict)
    dead_lettered_at: datetime = Field(default_factory=utc_now)
    error_type: str | None = Field(default=None, description="The exception's class, when handling failed")
    trace: str | None = Field(default=None, description="The last frames of the failure's traceback")
    attempts: int = Field(default=1, description="How many times handling was tried")
    cause: DeadLetterCause | None = Field(
        default=None, description="The reason's class; absent in letters written before it existed"
    )
    raw_truncated: bool = Field(
        default=False,
        description="The original bytes were too large to carry twice: raw_value is empty and "
        "raw_value_base64 holds their beginning only",
    )
