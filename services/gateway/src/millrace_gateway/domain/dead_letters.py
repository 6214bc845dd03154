"""Dead letters as the gateway indexes, shows and acts on them. Pure.

A dead letter is pending until an operator replays it (its original bytes go back to the original
topic, once) or discards it; a replay is ``replaying`` from the moment it is asked for until Kafka
has taken the bytes, then ``replayed``."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from millrace_common.contracts.messages.envelope import DeadLetter, TenantId
from millrace_common.contracts.topics import ALL_TOPICS
from pydantic import TypeAdapter, ValidationError

from millrace_gateway.domain.refusals import AlreadyReplayed, NotReplayable, WrongState

_TENANT_ID = TypeAdapter(TenantId)


class DeadLetterState(StrEnum):
    PENDING = "pending"
    REPLAYING = "replaying"
    REPLAYED = "replayed"
    DISCARDED = "discarded"


@dataclass(frozen=True)
class IndexedLetter:
    """One record of a ``<topic>.dlq`` as its index row holds it."""

    topic: str
    dlq_partition: int
    dlq_offset: int
    tenant_id: str | None
    source_partition: int
    source_offset: int
    consumer_group: str
    cause: str
    reason: str
    error_type: str | None
    trace: str | None
    attempts: int
    key: str | None
    headers: dict[str, str]
    value: bytes
    value_truncated: bool
    dead_lettered_at: datetime


def indexed(
    topic: str, dlq_partition: int, dlq_offset: int, letter: DeadLetter, *, proven_tenant: str | None = None
) -> IndexedLetter:
    """The index row of ``letter``, read at ``dlq_partition``/``dlq_offset`` of ``topic``'s dead-letter
    topic (``topic`` is the registry's name of the original topic). Its tenant is ``proven_tenant``
    when the original came in on a tenant's own topic (whatever the message claims), else the one the
    message names."""
    value = base64.b64decode(letter.raw_value_base64)
    return IndexedLetter(
        topic=topic,
        dlq_partition=dlq_partition,
        dlq_offset=dlq_offset,
        tenant_id=proven_tenant if proven_tenant is not None else tenant_of(value),
        source_partition=letter.partition,
        source_offset=letter.offset,
        consumer_group=letter.consumer_group,
        cause=(letter.cause.value if letter.cause is not None else cause_of(letter)),
        reason=letter.reason,
        error_type=letter.error_type,
        trace=letter.trace,
        attempts=letter.attempts,
        key=letter.key,
        headers=dict(letter.headers),
        value=value,
        value_truncated=letter.raw_truncated,
        dead_lettered_at=letter.dead_lettered_at,
    )


def cause_of(letter: DeadLetter) -> str:
    """The cause of a letter written before letters named it."""
    if letter.consumer_group.startswith("outbox:"):
        return "kafka_refused"
    if letter.error_type is not None:
        return "failed"
    return "undecodable" if "handling failed" not in letter.reason else "failed"


def tenant_of(value: bytes) -> str | None:
    """The tenant the original message names (its envelope's ``tenant_id``), when it is JSON that
    names a well-formed one; None otherwise (only a platform operator sees such a letter)."""
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(parsed, dict):
        return None
    try:
        return _TENANT_ID.validate_python(parsed.get("tenant_id"))
    except ValidationError:
        return None


def preview(value: bytes) -> tuple[str, object | None]:
    """How the original bytes are shown: ``("json", parsed)`` for JSON, ``("text", text)`` for UTF-8
    text, ``("binary", None)`` otherwise (the base64 is always there too)."""
    try:
        text = value.decode()
    except UnicodeDecodeError:
        return "binary", None
    try:
        return "json", json.loads(text)
    except ValueError:
        return "text", text


def visible_tenant(caller_tenant: str, operator_tenant: str | None) -> str | None:
    """Whose dead letters a tenant admin sees: their tenant's; a platform operator (an admin of the
    operators' tenant, ``MILLRACE_OPERATOR_TENANT``) sees every tenant's, and those naming none (None)."""
    return None if operator_tenant is not None and caller_tenant == operator_tenant else caller_tenant


def refuse_unless_pending(state: str, *, replayed_at: datetime | None, by: str | None) -> None:
    """Only a pending dead letter can be replayed or discarded; a second replay is refused, naming
    the first, so asking twice never sends the bytes twice."""
    if state == DeadLetterState.PENDING:
        return
    if state in (DeadLetterState.REPLAYING, DeadLetterState.REPLAYED):
        when = f" at {replayed_at.isoformat()}" if replayed_at is not None else ""
        raise AlreadyReplayed(
            f"the dead letter was replayed already{when} by {by or 'someone'}; it is {state}"
        )
    raise WrongState(f"the dead letter is {state}; only a pending one can be replayed or discarded")


def refuse_unless_replayable(value_truncated: bool, topic: str) -> None:
    if topic in _PER_TENANT:
        raise NotReplayable(
            f"a {topic} dead letter came from an outside producer's tenant topic; the producer sends it"
            " again (a replay could not prove its tenant)"
        )
    if topic in _GRANTED:
        raise NotReplayable(
            f"a {topic} dead letter came from an outside topic a tenant was granted; its producer sends"
            " it again (a replay cannot write to that topic in its producer's name)"
        )
    if value_truncated:
        raise NotReplayable(
            "the original message was too large to keep whole in its dead letter, so it cannot be sent again"
        )


_PER_TENANT = frozenset(topic.name for topic in ALL_TOPICS if topic.per_tenant)
_GRANTED = frozenset(topic.name for topic in ALL_TOPICS if topic.granted)
