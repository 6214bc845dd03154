"""A dead letter always fits its topic: what does not fit is cut, and the cut is said."""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.contracts.limits import MAX_PAYLOAD_BYTES, json_size
from millrace_common.contracts.messages.envelope import DeadLetter
from millrace_common.platform.kafka import fitted_letter


def letter_of(raw: bytes) -> DeadLetter:
    return DeadLetter(
        source_topic="t",
        partition=0,
        offset=1,
        key="k",
        reason="refused",
        consumer_group="g",
        raw_value=raw.decode(errors="replace"),
        raw_value_base64=base64.b64encode(raw).decode(),
    )


def test_a_small_letter_is_left_as_it_is():
    letter = letter_of(b'{"a": 1}')
    assert fitted_letter(letter) == letter


@settings(max_examples=25, deadline=None)
@given(
    size=st.integers(min_value=0, max_value=3 * MAX_PAYLOAD_BYTES),
    fill=st.sampled_from([b"x", b"\xff", b'"']),
)
def test_every_letter_fits_and_keeps_the_start_of_the_raw_bytes(size: int, fill: bytes):
    raw = fill * size
    letter = fitted_letter(letter_of(raw))
    assert json_size(letter.model_dump(mode="json")) <= MAX_PAYLOAD_BYTES
    kept = base64.b64decode(letter.raw_value_base64)
    assert raw.startswith(kept)
    if letter.raw_truncated:
        assert letter.raw_value == ""
    else:
        assert kept == raw and letter.raw_value == raw.decode(errors="replace")
