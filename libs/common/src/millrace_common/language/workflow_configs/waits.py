"""The configs of the nodes that wait on the world outside the run: ``wait_for_event`` (a signal sent to
the run, or a record event) and ``respond_to_webhook`` (the HTTP answer of the call that started it)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Literal

from pydantic import Field, JsonValue, model_validator

from millrace_common.language.conditions import Condition
from millrace_common.language.workflow_configs.base import (
    THIRTY_DAYS_SECONDS,
    NodeConfig,
    Path,
    PipelineId,
    _invalid,
)

SignalName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
"""A signal's name, as it appears in ``POST /api/v1/runs/{id}/signals/{name}``."""

DEFAULT_KEEP_EARLIER_SECONDS = 3600
MAX_KEEP_EARLIER_SECONDS = 7 * 24 * 3600
MAX_BUFFERED_EVENTS = 100
"""Events a run keeps for its nodes that accept earlier events; later ones are dropped (the run log
carries each kept event, and a run's log is read back whole when its orchestrator restarts)."""


class WaitForEventConfig(NodeConfig):
    """Pauses the run until a matching event arrives (handle ``event``), or ``wait_seconds`` pass
    (handle ``timeout``)."""

    literal_fields = frozenset(
        {
            "event",
            "signal_name",
            "pipeline_id",
            "condition",
            "wait_seconds",
            "accept_earlier_events",
            "keep_earlier_events_seconds",
        }
    )

    event: Literal["signal", "record"] = "signal"
    signal_name: SignalName | None = Field(
        default=None, description="For event signal: the name the signal is sent with"
    )
    pipeline_id: PipelineId | None = Field(default=None, description="For event record: the pipeline")
    record_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="For event record: the record's id (a template)",
    )
    condition: Condition | None = Field(
        default=None,
        description="Optional: a condition over the event (fields source, name, payload.<...>: a "
        "record event's payload is event_type, record.id, record.pipeline_id, record.data, "
        "record.old_data); an event for which it does not hold is passed over",
    )
    wait_seconds: float | None = Field(
        default=None,
        gt=0,
        le=THIRTY_DAYS_SECONDS,
        description="How long to wait before the timeout handle is taken; null waits as long as the run may",
    )
    accept_earlier_events: bool = Field(
        default=False,
        description="Keep matching signals (or record events) that arrive before the run reaches this "
        "node, and take the earliest when it does (record events only when record_id renders from "
        "the trigger alone)",
    )
    keep_earlier_events_seconds: int = Field(
        default=DEFAULT_KEEP_EARLIER_SECONDS,
        gt=0,
        le=MAX_KEEP_EARLIER_SECONDS,
        description="How long an earlier event is kept for this node",
    )

    @model_validator(mode="after")
    def _names_its_event(self) -> WaitForEventConfig:
        if self.event == "signal" and self.signal_name is None:
            raise _invalid("a wait for a signal needs signal_name")
        if self.event == "record" and (self.pipeline_id is None or self.record_id is None):
            raise _invalid("a wait for a record event needs pipeline_id and record_id")
        return self

    def condition_trees(self) -> Iterator[tuple[Path, Condition, bool]]:
        if self.condition is not None:
            yield ("condition",), self.condition, False


class RespondToWebhookConfig(NodeConfig):
    """Sets the HTTP answer of the webhook call that started the run, if the caller still waits."""

    literal_fields = frozenset({"status"})

    status: int = Field(default=200, ge=200, le=599)
    headers: dict[
        Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")],
        Annotated[str, Field(max_length=1000)],
    ] = Field(default_factory=dict, max_length=20)
    body: JsonValue = Field(default=None, description="The answer's JSON body (templates rendered)")
