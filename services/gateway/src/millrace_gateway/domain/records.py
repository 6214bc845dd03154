"""Pipelines and records as the API shows and changes them. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.json_values import JsonObject


@dataclass(frozen=True)
class Pipeline:
    id: str
    name: str
    created_at: datetime
    record_count: int = 0


@dataclass(frozen=True)
class Record:
    id: UUID
    pipeline_id: str
    data: JsonObject
    created_at: datetime
    updated_at: datetime


def changed_data(old: JsonObject, given: JsonObject, *, merge: bool) -> JsonObject:
    """A merge sets the given top-level fields (``null`` sets a field to null); otherwise ``given``
    replaces the record's data."""
    return {**old, **given} if merge else given
