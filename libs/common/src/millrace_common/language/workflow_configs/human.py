"""The human node configs: approvals (assignee, deadline, escalation, quorum) and task notifications."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from millrace_common.language.workflow_configs.base import (
    THIRTY_DAYS_SECONDS,
    NodeConfig,
    Title,
    _Frozen,
    _invalid,
)


class Assignee(_Frozen):
    """Exactly one of a user or a role."""

    user: str | None = Field(default=None, min_length=1, max_length=320)
    role: str | None = Field(default=None, min_length=1, max_length=100)

    @model_validator(mode="after")
    def _user_or_role(self) -> Assignee:
        if (self.user is None) == (self.role is None):
            raise _invalid('an assignee is {"user": ...} or {"role": ...}')
        return self


class ApprovalConfig(NodeConfig):
    literal_fields = frozenset({"on_deadline", "quorum", "allow_self_approval"})

    assignee: Assignee
    title: Title
    description: str = Field(default="", max_length=65_536)
    deadline_seconds: int | None = Field(default=None, gt=0, le=THIRTY_DAYS_SECONDS)
    on_deadline: Literal["escalate", "timeout"] = "timeout"
    escalate_to: Assignee | None = Field(default=None, validate_default=True)
    quorum: int = Field(default=1, ge=1, le=100, validate_default=True)
    allow_self_approval: bool = False

    @field_validator("escalate_to")
    @classmethod
    def _escalation_has_a_target(cls, value: Assignee | None, info: ValidationInfo) -> Assignee | None:
        on_deadline = info.data.get("on_deadline")
        if on_deadline == "escalate" and value is None:
            raise _invalid('on_deadline "escalate" needs escalate_to')
        if (
            on_deadline == "escalate"
            and "deadline_seconds" in info.data
            and info.data["deadline_seconds"] is None
        ):
            raise _invalid('on_deadline "escalate" needs deadline_seconds')
        if on_deadline == "timeout" and value is not None:
            raise _invalid('escalate_to is only used when on_deadline is "escalate"')
        return value

    @field_validator("quorum")
    @classmethod
    def _quorum_needs_a_role(cls, value: int, info: ValidationInfo) -> int:
        assignee = info.data.get("assignee")
        if value > 1 and assignee is not None and assignee.role is None:
            raise _invalid("a quorum above 1 needs a role assignee; one user approves once")
        return value


class TaskNotifyConfig(NodeConfig):
    assignee: Assignee
    title: Title
    message: str = Field(default="", max_length=65_536)
