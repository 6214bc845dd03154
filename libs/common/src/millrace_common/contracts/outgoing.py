"""A message to publish once the transaction that produced it commits, and the refusal of one too
large for any topic. Pure: a use case or a domain function builds these; the outbox stores them."""

from __future__ import annotations

from dataclasses import dataclass

from millrace_common.contracts.limits import MAX_PAYLOAD_BYTES, MIN_MESSAGE_BYTES
from millrace_common.contracts.messages.envelope import Envelope
from millrace_common.contracts.topics import Topic


class MessageTooLarge(ValueError):
    """A message larger than every topic accepts (``millrace_common.contracts.limits``): refused where it is
    written, inside the transaction that produced it, so it is never stored to block a relay."""

    def __init__(self, message_type: str, size: int) -> None:
        super().__init__(
            f"the {message_type} message this produces would be {size:,} bytes; messages are limited to "
            f"{MIN_MESSAGE_BYTES:,} bytes (record data, run input and node payloads: "
            f"{MAX_PAYLOAD_BYTES:,} bytes of JSON, less where a message carries two, as record.updated does)"
        )
        self.message_type = message_type
        self.size = size


@dataclass(frozen=True)
class Outgoing:
    """A message to publish once the transaction that produced it commits."""

    topic: Topic
    key: str
    message: Envelope
    value: bytes | None = None  # the message already serialised, when the caller has it

    def payload(self) -> bytes:
        value = self.value if self.value is not None else self.message.to_bytes()
        if len(value) > MIN_MESSAGE_BYTES:
            raise MessageTooLarge(self.message.type, len(value))
        return value
