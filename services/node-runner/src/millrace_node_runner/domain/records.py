"""Record nodes as decisions: new data, the causation limit, what a find can ask the database for,
and the ids a node's side effects get. Pure."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from millrace_common.contracts.json_values import JsonObject
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.conditions import (
    AllOf,
    Comparison,
    Condition,
    ConditionError,
    Operator,
    evaluate,
)
from pydantic import JsonValue

from millrace_node_runner.domain.outcomes import Failed, failed

_SIDE_EFFECT_IDS = uuid5(NAMESPACE_URL, "millrace:node-runner:side-effect")


def side_effect_id(run_id: UUID, node_id: str, attempt: int) -> UUID:
    """The id of what one attempt of one node creates, the same when its command is redelivered."""
    return uuid5(_SIDE_EFFECT_IDS, f"{run_id}:{node_id}:{attempt}")


def parse_record_id(text: str) -> UUID | None:
    try:
        return UUID(text.strip())
    except ValueError:
        return None


def new_data(old: JsonObject, change: JsonObject, mode: str) -> JsonObject:
    """``merge`` sets the given top-level fields (``null`` sets a field to null); ``replace`` swaps it all."""
    return {**old, **change} if mode == "merge" else dict(change)


def next_depth(run_depth: int) -> int:
    return run_depth + 1


def depth_refusal(run_depth: int, limit: int) -> Failed | None:
    """A change by a run whose trigger was itself ``run_depth`` runs deep carries ``run_depth + 1``;
    beyond the limit the change is not made, which stops workflows triggering each other forever."""
    depth = next_depth(run_depth)
    if depth <= limit:
        return None
    return failed(
        NodeErrorType.CAUSATION_DEPTH_EXCEEDED,
        f"causation depth {depth} exceeds the limit of {limit}: this run was started by a chain of "
        f"{run_depth} workflow-made record changes, so the record was not changed",
        retryable=False,
    )


def record_view(
    record_id: UUID, pipeline_id: str, data: JsonObject, created_at: datetime, updated_at: datetime
) -> JsonObject:
    """A record as nodes, filters and templates see it."""
    return {
        "id": str(record_id),
        "pipeline_id": pipeline_id,
        "data": data,
        "created_at": created_at.isoformat(),
        "updated_at": updated_at.isoformat(),
    }


# -- finding ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prefilter:
    """What the database can narrow a find to before the filters are evaluated on each record: only
    ever a superset of the matches, so evaluating the filters afterwards gives the exact answer."""

    record_id: UUID | None = None
    matches_nothing: bool = False
    contains: JsonObject = field(default_factory=dict)


def prefilter(condition: Condition | None) -> Prefilter:
    """Top-level ``equals`` on ``id`` or on a ``data.<key>`` with a text, number or boolean value."""
    record_id: UUID | None = None
    contains: JsonObject = {}
    for leaf in _conjuncts(condition):
        if leaf.operator is not Operator.EQUALS:
            continue
        if leaf.field == "id":
            if not isinstance(leaf.value, str) or (parsed := parse_record_id(leaf.value)) is None:
                return Prefilter(matches_nothing=True)
            if record_id is not None and record_id != parsed:
                return Prefilter(matches_nothing=True)
            record_id = parsed
            continue
        path = leaf.field.split(".")
        if path[0] != "data" or len(path) < 2 or any(part.isdigit() or not part for part in path[1:]):
            continue
        if not _containable(leaf.value):
            continue
        if not _nest(contains, path[1:], leaf.value):
            return Prefilter(matches_nothing=True)
    return Prefilter(record_id=record_id, contains=contains)


def _conjuncts(condition: Condition | None) -> Iterator[Comparison]:
    if isinstance(condition, Comparison):
        yield condition
    elif isinstance(condition, AllOf):
        for child in condition.all:
            yield from _conjuncts(child)


def _containable(value: JsonValue) -> bool:
    if isinstance(value, bool | str):
        return True
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _nest(target: JsonObject, path: list[str], value: JsonValue) -> bool:
    """Add ``path = value`` to a containment object; False when it contradicts what is there."""
    head, *rest = path
    if not rest:
        if head in target:
            return _same_scalar(target[head], value)
        target[head] = value
        return True
    child = target.setdefault(head, {})
    if not isinstance(child, dict):
        return False
    return _nest(child, rest, value)


def _same_scalar(left: JsonValue, right: JsonValue) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, str) or isinstance(right, str):
        return left == right and type(left) is type(right)
    return left == right


def matches(condition: Condition | None, record: JsonObject, now: datetime) -> bool:
    """Raises :class:`ConditionError` for a filter that cannot be applied to this record."""
    return condition is None or evaluate(condition, record, now=now)


def condition_failure(error: ConditionError) -> Failed:
    return failed(NodeErrorType.CONDITION, f"the filters cannot be applied: {error}", retryable=False)
