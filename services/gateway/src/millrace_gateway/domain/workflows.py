"""Workflow rules: which definitions are accepted, what an archived workflow may not do, how a copy is
named. Pure."""

from __future__ import annotations

from typing import Literal

from millrace_common.contracts.messages.run_events import RUN_ENDED_STATUSES, RunStatus
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.language.workflow_validation import stored_size_problem, validate_definition
from millrace_common.platform.refusals import FieldProblem
from pydantic import JsonValue

from millrace_gateway.domain.refusals import Archived, InvalidDefinition

Status = Literal["draft", "active", "paused", "archived"]
FINISHED_RUN_STATUSES = tuple(sorted(s.value for s in RUN_ENDED_STATUSES if s is not RunStatus.THROTTLED))
"""Runs in these states count toward a workflow's success rate (a throttled run never ran)."""
NAME_LIMIT = 200
COPY_SUFFIX = " (copy)"


def checked_definition(definition: dict[str, JsonValue]) -> WorkflowDefinition:
    """The definition, validated; every problem at once when it is not valid."""
    report = validate_definition(definition)
    if report.definition is None:
        raise InvalidDefinition(
            f"the workflow definition has {len(report.problems)} problem(s)",
            *(FieldProblem("/definition" + p.pointer, p.message) for p in report.problems),
        )
    return report.definition


def refuse_if_archived(status: str, action: str) -> None:
    """``action`` completes "an archived workflow cannot ...": ``be changed``, ``run``."""
    if status == "archived":
        raise Archived(f"an archived workflow cannot {action}")


def copy_name(name: str) -> str:
    return name[: NAME_LIMIT - len(COPY_SUFFIX)] + COPY_SUFFIX


def refuse_oversized_copy(definition: WorkflowDefinition) -> None:
    # Definitions stored before the size limit was enforced on saving can be over it.
    oversized = stored_size_problem(definition)
    if oversized is not None:
        raise InvalidDefinition(
            f"the workflow's newest version cannot be copied: {oversized.message}",
            FieldProblem("/path/workflow_id", oversized.message),
        )
