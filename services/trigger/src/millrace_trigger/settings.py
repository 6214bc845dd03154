from pathlib import Path

from millrace_common.platform.settings import ServiceSettings
from pydantic import Field

CONSUMER = "trigger"
"""This service's name on the outbox rows and consumer positions it writes."""

GATHER_BELOW_RECORDS = 32
"""A batch of this many record events spreads the batch's own share of the CPU thinly enough: it is
handled without waiting for more (a burst's batches hold up to ``MILLRACE_KAFKA_MAX_POLL_RECORDS``).
Here so the gathering setting's description says the number the code uses."""


class TriggerSettings(ServiceSettings):
    service_name: str = "trigger"
    http_port: int = 18081
    trigger_max_causation_depth: int = Field(
        default=5,
        ge=1,
        le=100,
        description="How many runs a chain of record changes may start: a change made by a run started "
        "by a change made by a run... starts no further run beyond this depth (the firing is recorded)",
    )
    trigger_schedule_tick_seconds: float = Field(
        default=1.0, gt=0, le=60, description="How often due slots are looked for"
    )
    trigger_schedule_grace_seconds: float = Field(
        default=60,
        ge=1,
        description=(
            "A slot found later than this after its time counts as missed (the missed-slot policy applies)"
        ),
    )
    trigger_retention_days: float = Field(
        default=7,
        gt=0,
        description="Firings, webhook delivery ids and last-seen record states older than this are pruned",
    )
    trigger_record_gather_ms: float = Field(
        default=15,
        ge=0,
        le=1000,
        description="While the record consumer is busy nearly all the time, a batch of fewer than"
        f" {GATHER_BELOW_RECORDS} record events waits up to this long for more before it is handled"
        " (0: never waits)",
    )
    trigger_ingress_discovery_seconds: float = Field(
        default=30,
        ge=1,
        le=300,
        description="How soon a tenant's new ingress topic (tenant.<tenant>.records.ingress) is read:"
        " the consumer reads the topic list this often",
    )
    trigger_kafka_discovery_seconds: float = Field(
        default=30,
        ge=0.5,
        le=300,
        description="How soon a Kafka trigger's topic is read (or no longer read) after its workflow was"
        " activated (paused) or its grant added (revoked): the service looks this often",
    )
    trigger_kafka_max_message_bytes: int = Field(
        default=1_000_000,
        ge=1,
        le=100_000_000,
        description="The largest message value a Kafka trigger takes; a larger one is dead-lettered",
    )
    trigger_clock_file: Path | None = Field(
        default=None,
        description=(
            "For tests: read the current time from this file (an ISO-8601 instant) "
            "instead of the system clock"
        ),
    )
