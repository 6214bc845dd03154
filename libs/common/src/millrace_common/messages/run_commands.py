"""Commands on ``runs.commands``, keyed by ``run_id``."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from millrace_common.messages.envelope import Envelope, JsonObject


class TriggerData(BaseModel):
    """What started a run, as templates see it under ``trigger``."""

    model_config = ConfigDict(frozen=True)

    kind: str
    source_event_id: UUID | None = None
    data: JsonObject = Field(default_factory=dict)


class StartRun(Envelope):
    type: Literal["run.start"] = "run.start"
    run_id: UUID
    workflow_id: UUID
    workflow_version: int = Field(ge=1)
    trigger: TriggerData
    idempotency_key: str = Field(min_length=1, max_length=300)


AnyRunCommand = Annotated[StartRun, Field(discriminator="type")]
RUN_COMMAND = TypeAdapter(AnyRunCommand)
