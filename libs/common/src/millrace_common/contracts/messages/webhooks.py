"""Inbound webhooks: the run a call names, and the signing scheme callers use.

The gateway receives ``POST /hooks/{token}``, checks the signature, decides the call's outcome and
stores the run's ``StartRun`` with the call's delivery claim, answering 202 with the run id once that is
durable. A signature is HMAC-SHA256 over ``"<timestamp>." + raw body``
with the tenant's ``hmac`` credential, sent as ``X-Millrace-Signature: v1=<hex>`` next to
``X-Millrace-Timestamp: <unix seconds>``; ``docs/triggers.md`` is the callers' contract.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import NAMESPACE_URL, UUID, uuid5

SIGNATURE_HEADER = "X-Millrace-Signature"
TIMESTAMP_HEADER = "X-Millrace-Timestamp"
DELIVERY_HEADER = "X-Millrace-Delivery"
SIGNATURE_SCHEME = "v1"
SIGNATURE_TOLERANCE = timedelta(minutes=5)
MAX_DELIVERY_ID_CHARS = 200

_RUN_IDS = uuid5(NAMESPACE_URL, "millrace:run")


def run_id_for_key(idempotency_key: str) -> UUID:
    """Triggered runs are named by their idempotency key, so asking twice names the same run.

    Shared by the trigger service (record events, schedules) and the gateway's webhook receiver.
    """
    return uuid5(_RUN_IDS, idempotency_key)


def webhook_idempotency_key(workflow_id: UUID, delivery_id: str) -> str:
    return f"webhook:{delivery_id}:{workflow_id}"


# -- signatures -------------------------------------------------------------------------------------


class SignatureProblem(StrEnum):
    MISSING_TIMESTAMP = "missing_timestamp"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_SIGNATURE = "malformed_signature"
    WRONG_SIGNATURE = "wrong_signature"


class SignatureRejected(ValueError):
    """The call's signature does not prove it came from the secret's holder, recently."""

    def __init__(self, problem: SignatureProblem, message: str) -> None:
        super().__init__(message)
        self.problem = problem


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header value a caller sends: ``v1=`` and the hex HMAC-SHA256 of ``"<timestamp>." + body``."""
    digest = hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_SCHEME}={digest}"


def verify_signature(
    secret: bytes,
    *,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    now: datetime,
    tolerance: timedelta = SIGNATURE_TOLERANCE,
) -> None:
    """Raise :class:`SignatureRejected` unless the timestamp is within ``tolerance`` of ``now`` and one
    of the ``v1=`` signatures (comma-separated, so a secret can be rotated) matches, compared in
    constant time."""
    if not timestamp_header:
        raise SignatureRejected(
            SignatureProblem.MISSING_TIMESTAMP, f"the {TIMESTAMP_HEADER} header is missing"
        )
    stripped = timestamp_header.strip()
    if not stripped.isdigit() or len(stripped) > 12:
        raise SignatureRejected(
            SignatureProblem.MALFORMED_TIMESTAMP, f"{TIMESTAMP_HEADER} must be whole Unix seconds"
        )
    timestamp = int(stripped)
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        raise SignatureRejected(
            SignatureProblem.STALE_TIMESTAMP,
            f"{TIMESTAMP_HEADER} is more than {int(tolerance.total_seconds())} s "
            "away from the server's clock",
        )
    if not signature_header:
        raise SignatureRejected(
            SignatureProblem.MISSING_SIGNATURE, f"the {SIGNATURE_HEADER} header is missing"
        )
    offered = [part.strip() for part in signature_header.split(",")]
    digests = [
        part.removeprefix(f"{SIGNATURE_SCHEME}=")
        for part in offered
        if part.startswith(f"{SIGNATURE_SCHEME}=")
    ]
    if not digests or any(len(d) != 64 for d in digests):
        raise SignatureRejected(
            SignatureProblem.MALFORMED_SIGNATURE,
            f"{SIGNATURE_HEADER} must be '{SIGNATURE_SCHEME}=<64 hex digits>'",
        )
    expected = signature(secret, timestamp, body).encode()
    matched = False
    for digest in digests:
        # Compare every offered signature, so the time taken does not reveal which one matched.
        matched |= hmac.compare_digest(expected, f"{SIGNATURE_SCHEME}={digest}".encode())
    if not matched:
        raise SignatureRejected(SignatureProblem.WRONG_SIGNATURE, "the signature does not match the body")
