"""Webhook signatures: HMAC-SHA256 over timestamp and raw body, a 5-minute tolerance, rotation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from millrace_common.contracts.messages.webhooks import (
    SignatureProblem,
    SignatureRejected,
    signature,
    verify_signature,
)

pytestmark = pytest.mark.unit

SECRET = b"a shared secret of some length"
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
STAMP = int(NOW.timestamp())
BODY = b'{"order": 7}'


def check(*, secret=SECRET, timestamp=str(STAMP), sig=None, body=BODY, now=NOW) -> None:
    verify_signature(
        secret,
        timestamp_header=timestamp,
        signature_header=signature(SECRET, STAMP, BODY) if sig is None else sig,
        body=body,
        now=now,
    )


def problem(**overrides) -> SignatureProblem:
    with pytest.raises(SignatureRejected) as rejected:
        check(**overrides)
    return rejected.value.problem


def test_a_correct_signature_passes():
    check()
    assert signature(SECRET, STAMP, BODY).startswith("v1=")


def test_the_timestamp_may_be_five_minutes_off_either_way():
    check(now=NOW + timedelta(minutes=5))
    check(now=NOW - timedelta(minutes=5))
    assert problem(now=NOW + timedelta(minutes=5, seconds=1)) is SignatureProblem.STALE_TIMESTAMP
    assert problem(now=NOW - timedelta(minutes=5, seconds=1)) is SignatureProblem.STALE_TIMESTAMP


def test_each_way_of_being_wrong_has_its_own_reason():
    assert problem(timestamp=None) is SignatureProblem.MISSING_TIMESTAMP
    assert problem(timestamp="soon") is SignatureProblem.MALFORMED_TIMESTAMP
    assert problem(timestamp="-5") is SignatureProblem.MALFORMED_TIMESTAMP
    assert problem(sig="") is SignatureProblem.MISSING_SIGNATURE
    assert problem(sig="sha256=abc") is SignatureProblem.MALFORMED_SIGNATURE
    assert problem(sig="v1=" + "0" * 64) is SignatureProblem.WRONG_SIGNATURE
    assert problem(body=BODY + b" ") is SignatureProblem.WRONG_SIGNATURE
    assert problem(secret=b"another secret") is SignatureProblem.WRONG_SIGNATURE


def test_a_signature_for_another_timestamp_does_not_pass():
    replayed = signature(SECRET, STAMP - 1, BODY)
    assert problem(sig=replayed) is SignatureProblem.WRONG_SIGNATURE


def test_several_signatures_may_be_sent_while_a_secret_is_rotated():
    old = signature(b"the old secret value", STAMP, BODY)
    check(sig=f"{old}, {signature(SECRET, STAMP, BODY)}")


@given(body=st.binary(max_size=300), secret=st.binary(min_size=1, max_size=64), tamper=st.integers(0, 299))
def test_any_change_to_the_body_breaks_the_signature(body, secret, tamper):
    header = signature(secret, STAMP, body)
    verify_signature(secret, timestamp_header=str(STAMP), signature_header=header, body=body, now=NOW)
    if body:
        index = tamper % len(body)
        changed = body[:index] + bytes([body[index] ^ 1]) + body[index + 1 :]
        with pytest.raises(SignatureRejected):
            verify_signature(
                secret, timestamp_header=str(STAMP), signature_header=header, body=changed, now=NOW
            )
