"""Rules with one owner: each is defined once and the places that need it are held to it."""

from __future__ import annotations

import typing
from datetime import UTC, datetime

import pytest
from millrace_common.contracts.json_values import json_equal
from millrace_common.contracts.messages.run_events import (
    RUN_ENDED_STATUSES,
    RUN_ENDED_TYPES,
    AnyRunEvent,
    RunStatus,
    event_type,
)
from millrace_common.language.conditions import evaluate, parse_condition
from millrace_gateway.domain import live
from millrace_gateway.entrypoints.http import runs as run_routes

pytestmark = pytest.mark.unit


def test_the_api_lists_every_run_status_but_new():
    assert set(typing.get_args(run_routes.RunStatus)) == {s.value for s in RunStatus} - {"new"}


def test_the_events_that_end_a_run_are_run_events_and_leave_their_status():
    for ending in RUN_ENDED_TYPES:
        assert ending.startswith("run.")
        assert RunStatus(ending.removeprefix("run.")) in RUN_ENDED_STATUSES
    assert live.TERMINAL_TYPES == RUN_ENDED_TYPES
    # every ending is a member of the union runs.events is decoded with
    members = {event_type(model) for model in typing.get_args(typing.get_args(AnyRunEvent)[0])}
    assert RUN_ENDED_TYPES <= members


def test_one_json_equality_for_conditions_and_changes():
    record = {"profile": {"name": "Ada", "nickname": None}}
    condition = parse_condition({"field": "profile", "operator": "equals", "value": {"name": "Ada"}})
    assert json_equal(record["profile"], {"name": "Ada"})
    assert evaluate(condition, record, now=datetime(2026, 1, 1, tzinfo=UTC))
    assert not json_equal({"a": 1}, {"a": True}) and json_equal([1.0], [1])
