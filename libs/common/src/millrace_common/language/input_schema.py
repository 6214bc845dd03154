"""A workflow's declared input: the JSON Schema a manual trigger may carry (``input_schema``), checked
as a schema when the workflow is saved, and the input of a run checked against it (a manual run, a
run a ``sub_workflow`` node starts). jsonschema-rs does both (the node runner's AI nodes use it too);
the schema's own ``$schema`` picks the draft, 2020-12 when it names none."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jsonschema_rs
from pydantic import JsonValue

__all__ = ["MAX_INPUT_PROBLEMS", "InputProblem", "check_input_schema", "input_problems"]

MAX_INPUT_PROBLEMS = 20
"""Problems reported for one input at most: enough to fix a form, bounded for a 422 and a log line."""


@dataclass(frozen=True)
class InputProblem:
    pointer: str
    """The JSON Pointer of the offending value in the input ("" for the input as a whole)."""
    message: str


def check_input_schema(schema: Mapping[str, JsonValue]) -> None:
    """Raise ``ValueError`` naming what is wrong when ``schema`` is not a valid JSON Schema."""
    try:
        jsonschema_rs.meta.validate(dict(schema))
    except jsonschema_rs.ValidationError as error:
        where = _pointer(error.instance_path)
        raise ValueError(
            f"input_schema is not a valid JSON Schema at {where or '/'}: {error.message}"
        ) from None
    except jsonschema_rs.ReferencingError as error:
        raise ValueError(f"input_schema has a reference that cannot be resolved: {error}") from None


def input_problems(schema: Mapping[str, JsonValue], data: JsonValue) -> list[InputProblem]:
    """Where ``data`` does not match ``schema`` (empty when it does), at most :data:`MAX_INPUT_PROBLEMS`."""
    validator = jsonschema_rs.validator_for(dict(schema))
    problems = []
    taken: dict[tuple[int, int], int] = {}
    for error in validator.iter_errors(data):
        problems.append(InputProblem(_pointer(_keys_in(data, error.instance_path, taken)), error.message))
        if len(problems) >= MAX_INPUT_PROBLEMS:
            break
    return problems


def _keys_in(data: JsonValue, path: object, taken: dict[tuple[int, int], int]) -> list[object]:
    """``path`` with the object keys ``data`` really has: jsonschema-rs gives a key that reads as a
    number as that number (``"00"`` and ``"+0"`` as ``0``). Such a number becomes the key it stands
    for, or, when several keys of one object read as it, the next of them in the object's order (the
    order errors come in)."""
    node: object = data
    keys: list[object] = []
    for step in path:  # type: ignore[attr-defined]
        if isinstance(node, dict) and isinstance(step, int):
            meant = [k for k in node if _index_of(k) == step]
            if len(meant) > 1:
                seen = taken.get((id(node), step), 0)
                taken[(id(node), step)] = seen + 1
                step = meant[min(seen, len(meant) - 1)]
            else:
                step = meant[0] if meant else str(step)
        keys.append(step)
        if isinstance(node, dict):
            node = node.get(str(step))
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            node = node[step]
        else:
            node = None
    return keys


def _index_of(key: str) -> int | None:
    """The number jsonschema-rs reads ``key`` as (Rust's ``usize`` parsing: an optional ``+``, then
    ASCII digits), or None."""
    digits = key.removeprefix("+")
    return int(digits) if digits and digits.isascii() and digits.isdigit() else None


def _pointer(path: object) -> str:
    parts = [str(p).replace("~", "~0").replace("/", "~1") for p in path]  # type: ignore[attr-defined]
    return "".join(f"/{p}" for p in parts)
