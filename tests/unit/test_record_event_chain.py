"""The cluster drill's per-record order check (tests/support/cluster.chain_problem): a record's events
in topic order must be one chain, record.created first and each update naming the data before it."""

from __future__ import annotations

import pytest

from tests.support.cluster import chain_problem

pytestmark = pytest.mark.unit


def created(data: dict) -> dict:
    return {"type": "record.created", "data": data}


def updated(old: dict, new: dict) -> dict:
    return {"type": "record.updated", "old_data": old, "data": new}


A, B, C = {"n": 1}, {"n": 1, "step": 1}, {"n": 1, "step": 2}


def test_a_chain_in_the_order_it_was_written_ending_in_the_stored_record_passes():
    assert chain_problem([created(A), updated(A, B), updated(B, C)], C) is None


@pytest.mark.parametrize(
    ("chain", "stored", "reason"),
    [
        ([], A, "no events"),
        ([updated(A, B), created(A)], B, "first event is record.updated"),
        ([created(A), updated(B, C), updated(A, B)], B, "follows data"),  # two updates swapped
        ([created(A), created(A)], A, "record.created twice"),
        ([created(A), updated(A, B)], C, "last event has"),  # the newest change never arrived
    ],
)
def test_a_broken_chain_is_named(chain: list[dict], stored: dict, reason: str):
    assert reason in (chain_problem(chain, stored) or "")
