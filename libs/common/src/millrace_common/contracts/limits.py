"""The size contract: no message a service produces can be larger than its topic accepts.

Every topic accepts messages of ``MILLRACE_KAFKA_MAX_MESSAGE_BYTES`` (at least
:data:`MIN_MESSAGE_BYTES`, Kafka's own default being 1 MiB); each service checks at start that the
broker's topics accept that much. A message is an envelope (ids, times, names: a few KiB at most)
around one payload (a node's input or output, record data, a run's trigger data), so a payload may be
:data:`MAX_PAYLOAD_BYTES` of compact JSON. Larger payloads are refused where they enter: the API
answers 413 ``too_large``, a node whose input or output would be larger fails with the node error
``too_large``. Nothing waits on a message that can never be sent.
"""

from __future__ import annotations

from pydantic_core import to_json

MIN_MESSAGE_BYTES = 1_000_000
"""The smallest message limit the services accept: the payload limit below is fixed, so every
installation accepts the same workflows."""

ENVELOPE_HEADROOM_BYTES = 64 * 1024
"""Room a message's envelope may take around its payload."""

MAX_PAYLOAD_BYTES = MIN_MESSAGE_BYTES - ENVELOPE_HEADROOM_BYTES
"""The largest payload (compact JSON) a message carries: 934,464 bytes."""


def json_size(value: object) -> int:
    """Bytes of ``value`` as compact JSON, the way messages carry it."""
    return len(to_json(value))


def too_large(value: object, limit: int = MAX_PAYLOAD_BYTES) -> int | None:
    """The size of ``value`` when it is over ``limit``, else None."""
    size = json_size(value)
    return size if size > limit else None
