"""Record events on ``records.events``, keyed by ``record_id``.

Outside producers (a CRM, say) may write these too; ``docs/message-contracts.md`` is their contract.
"""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import Field, TypeAdapter

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.messages.envelope import Envelope


class RecordEvent(Envelope):
    pipeline_id: str = Field(min_length=1, max_length=128)
    record_id: str = Field(min_length=1, max_length=128)
    causation_depth: int = Field(
        default=0, ge=0, description="How many workflow runs led to this change; 0 for outside changes"
    )
    caused_by_run: UUID | None = None


class RecordCreated(RecordEvent):
    type: Literal["record.created"] = "record.created"
    data: JsonObject


class RecordUpdated(RecordEvent):
    type: Literal["record.updated"] = "record.updated"
    data: JsonObject
    old_data: JsonObject | None = Field(
        default=None, description="The record before the change; when absent the trigger service derives it"
    )


class RecordDeleted(RecordEvent):
    type: Literal["record.deleted"] = "record.deleted"
    old_data: JsonObject | None = None


AnyRecordEvent = Annotated[RecordCreated | RecordUpdated | RecordDeleted, Field(discriminator="type")]
RECORD_EVENT = TypeAdapter(AnyRecordEvent)
