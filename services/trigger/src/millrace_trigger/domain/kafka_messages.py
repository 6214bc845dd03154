"""Which runs a message on a granted Kafka topic asks for (Kafka triggers). Pure.

A message's value is JSON (a larger or unreadable one is refused with the reason, for its dead
letter); its key, headers, partition, offset and timestamp go to templates beside it as
``trigger.kafka``. Each active workflow whose trigger reads the topic (and whose tenant still holds
the grant: the candidates are found so) fires once per message: the idempotency key is the topic,
partition and offset with the workflow, so a redelivered message asks for the same run. A trigger
that starts from ``latest`` ignores messages written before its activation.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from millrace_common.contracts.json_depth import MAX_JSON_DEPTH, too_deep
from millrace_common.contracts.json_values import JsonObject
from pydantic import JsonValue

from millrace_trigger.domain.firings import Candidate, Firing, firing
from millrace_trigger.domain.matching import Filtered, conditions_verdict


@dataclass(frozen=True)
class KafkaCandidate:
    """An active workflow with a Kafka trigger on a topic its tenant was granted."""

    candidate: Candidate
    activated_at: datetime

    @property
    def topic(self) -> str:
        return self.candidate.config.topic or ""


@dataclass(frozen=True)
class ConsumedMessage:
    topic: str
    partition: int
    offset: int
    key: str | None
    headers: tuple[tuple[str, str], ...]
    timestamp: datetime
    value: JsonValue


@dataclass(frozen=True)
class Unreadable:
    reason: str


def read_value(raw: bytes | None, *, max_bytes: int) -> JsonValue | Unreadable:
    """The message's value as JSON, or why a Kafka trigger cannot take it."""
    if raw is None:
        return Unreadable("the message has no value (a tombstone); a Kafka trigger takes JSON values")
    if len(raw) > max_bytes:
        return Unreadable(
            f"the message's value is {len(raw)} bytes; a Kafka trigger takes at most {max_bytes}"
            " (MILLRACE_TRIGGER_KAFKA_MAX_MESSAGE_BYTES)"
        )
    if too_deep(raw):
        return Unreadable(f"the message's value nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value: JsonValue = json.loads(raw, parse_constant=_no_constant)
    except UnicodeDecodeError:
        return Unreadable("the message's value is not UTF-8 text; a Kafka trigger takes JSON values")
    except ValueError as error:
        return Unreadable(f"the message's value is not JSON: {error}")
    return value


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def consumed(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    headers: Iterable[tuple[str, bytes | None]],
    timestamp_ms: int,
    value: JsonValue,
) -> ConsumedMessage:
    """A polled record as templates see it: key and header values as text (invalid UTF-8 replaced)."""
    return ConsumedMessage(
        topic=topic,
        partition=partition,
        offset=offset,
        key=key.decode(errors="replace") if key is not None else None,
        headers=tuple((name, (data or b"").decode(errors="replace")) for name, data in headers),
        timestamp=datetime.fromtimestamp(timestamp_ms / 1000, tz=UTC),
        value=value,
    )


def message_key(message: ConsumedMessage, candidate: Candidate) -> str:
    """Topic, partition, offset and workflow: a redelivered message asks each workflow for the same run."""
    return f"kafka:{message.topic}:{message.partition}:{message.offset}:{candidate.workflow_ref}"


def trigger_data(message: ConsumedMessage) -> JsonObject:
    return {
        "kafka": {
            "topic": message.topic,
            "partition": message.partition,
            "offset": message.offset,
            "key": message.key,
            # A header may repeat; the last value of a name wins, as most clients read them.
            "headers": dict(message.headers),
            "timestamp": message.timestamp.isoformat(),
            "value": message.value,
        }
    }


def match_message(
    message: ConsumedMessage, candidates: Sequence[KafkaCandidate], *, now: datetime
) -> list[Firing]:
    """The firings a message causes: one per workflow reading its topic whose condition holds (or a
    ``condition_error`` one recorded without a run)."""
    data = trigger_data(message)
    firings = []
    for found in candidates:
        candidate = found.candidate
        if found.topic != message.topic:
            continue
        if candidate.config.start_from == "latest" and message.timestamp < found.activated_at:
            continue
        verdict = conditions_verdict(candidate, data, now)
        if isinstance(verdict, Filtered):
            continue
        outcome, reason = verdict
        firings.append(
            firing(
                candidate,
                key=message_key(message, candidate),
                source="kafka",
                source_event_id=None,
                data=data,
                outcome=outcome,
                reason=reason,
            )
        )
    return firings
