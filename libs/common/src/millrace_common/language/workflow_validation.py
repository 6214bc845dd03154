"""Validate a submitted workflow definition and report every problem at once, each with a pointer.

Size limits are checked before anything is parsed deeply, so an oversized or deeply nested body
costs a scan, not a parse. Then the definition is validated node by node (config errors point into
the submitted JSON) and its graph is checked even when some node configs are invalid.

The size limit, :data:`MAX_BYTES`, holds for the definition as submitted (JSON text as it is; a parsed
mapping, which is what the API hands over, as compact JSON) and for the definition as it is stored and
read back (compact JSON with every default filled in, which can be larger than what was submitted).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from millrace_common.language.workflow import (
    CHECK_ERROR_TYPES,
    MAX_EDGES,
    MAX_NODES,
    SKIP_GRAPH_CHECKS,
    Edge,
    Node,
    WorkflowDefinition,
)
from millrace_common.language.workflow_graph import EdgeView, NodeView, Problem, graph_problems, pointer
from millrace_common.language.workflow_nodes import node_types, source_handles

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_EDGES",
    "MAX_NODES",
    "MAX_STRING_BYTES",
    "Problem",
    "ValidationReport",
    "stored_size_problem",
    "validate_definition",
]

MAX_BYTES = 1024 * 1024
MAX_DEPTH = 32
MAX_STRING_BYTES = 64 * 1024

_NODE = TypeAdapter(Node)
_EDGE = TypeAdapter(Edge)


@dataclass(frozen=True)
class ValidationReport:
    """Every problem found, and the typed definition when there were none."""

    problems: tuple[Problem, ...]
    definition: WorkflowDefinition | None

    @property
    def ok(self) -> bool:
        return not self.problems


def validate_definition(raw: bytes | str | Mapping[str, Any]) -> ValidationReport:
    """Check a definition (JSON text or an already parsed mapping) and report every problem."""
    if isinstance(raw, str | bytes | bytearray):
        parsed = _parse_json(raw)
        if isinstance(parsed, Problem):
            return _refused([parsed])
        document: object = parsed
    else:
        document = raw
    if not isinstance(document, Mapping):
        return _refused([Problem("", "the definition must be a JSON object with nodes and edges")])
    limits = _limit_problems(document)
    if limits:
        return _refused(limits)
    return _validated(document)


def _refused(problems: Sequence[Problem]) -> ValidationReport:
    return ValidationReport(tuple(dict.fromkeys(problems)), None)


# -- limits, before deep parsing --------------------------------------------------------------------

_STRING_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BRACKET_STEP = tuple(1 if b in b"[{" else -1 if b in b"]}" else 0 for b in range(256))


def _parse_json(raw: bytes | str | bytearray) -> object | Problem:
    if len(raw) > MAX_BYTES:
        return Problem("", f"the definition is {len(raw)} bytes; the limit is {MAX_BYTES} (1 MiB)")
    data = _utf8(raw) if isinstance(raw, str) else bytes(raw)
    if len(data) > MAX_BYTES:
        return Problem("", f"the definition is {len(data)} bytes; the limit is {MAX_BYTES} (1 MiB)")
    brackets = _STRING_LITERAL.sub(b"", data).translate(None, _NOT_BRACKETS)
    depth = max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)
    if depth > MAX_DEPTH:
        return Problem("", f"the definition nests {depth} levels deep; the limit is {MAX_DEPTH}")
    try:
        return json.loads(raw if isinstance(raw, str) else data, parse_constant=_refuse_constant)
    except ValueError as error:
        return Problem("", f"the definition is not valid JSON: {error}")


def _utf8(text: str) -> bytes:
    # surrogatepass: JSON text may carry lone surrogates (from \ud800 escapes) and must still be measured
    return text.encode("utf-8", "surrogatepass")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def _limit_problems(document: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for key, limit in (("nodes", MAX_NODES), ("edges", MAX_EDGES)):
        items = document.get(key)
        if isinstance(items, list | tuple) and len(items) > limit:
            problems.append(
                Problem(f"/{key}", f"the definition has {len(items)} {key}; the limit is {limit}")
            )
    oversized = list(_oversized(document))
    problems.extend(oversized)
    if not oversized:  # nested within MAX_DEPTH (so it can be written out), every string within bounds
        size = len(_utf8(json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=_plain)))
        if size > MAX_BYTES:
            problems.append(_too_big(size, "as compact JSON"))
    return problems


def _too_big(size: int, measured: str) -> Problem:
    return Problem("", f"the definition is {size} bytes {measured}; the limit is {MAX_BYTES} (1 MiB)")


def _plain(value: object) -> object:
    """What ``json.dumps`` makes of a mapping that is not a dict, and of anything else a caller's
    mapping may hold (validation refuses it later; here it is only measured)."""
    return dict(value) if isinstance(value, Mapping) else str(value)


def stored_size_problem(definition: WorkflowDefinition) -> Problem | None:
    """The size problem of a definition as it is stored and read back (compact JSON with every default
    filled in), or None within :data:`MAX_BYTES`."""
    size = len(definition.model_dump_json(by_alias=True))
    return _too_big(size, "as stored (compact JSON with its defaults)") if size > MAX_BYTES else None


_Container = Mapping[str, Any] | list[Any] | tuple[Any, ...]


def _oversized(document: Mapping[str, Any]) -> Iterator[Problem]:
    """Strings over MAX_STRING_BYTES, nesting over MAX_DEPTH and numbers JSON cannot hold (NaN and
    infinities, which a caller's parser may have let in), walked without recursion so a deep mapping
    cannot exhaust the stack; paths are kept for containers only."""
    stack: list[tuple[tuple[str | int, ...], _Container]] = [((), document)]
    while stack:
        path, container = stack.pop()
        if len(path) >= MAX_DEPTH:
            yield Problem(pointer(*path), f"the definition nests more than {MAX_DEPTH} levels deep here")
            continue
        members = container.items() if isinstance(container, Mapping) else enumerate(container)
        for key, member in members:
            if isinstance(key, str) and _too_long(key):
                yield Problem(
                    pointer(*path), f"a member name is {len(_utf8(key))} bytes; the limit is 64 KiB"
                )
            elif isinstance(member, str):
                if len(member) > _SHORTEST_TOO_LONG and _too_long(member):
                    yield Problem(
                        pointer(*path, key), f"string is {len(_utf8(member))} bytes; the limit is 64 KiB"
                    )
            elif isinstance(member, float):
                if not math.isfinite(member):
                    yield Problem(pointer(*path, key), f"{member} is not a JSON number")
            elif isinstance(member, Mapping | list | tuple):
                stack.append(((*path, key), member))


_SHORTEST_TOO_LONG = MAX_STRING_BYTES // 4  # UTF-8 takes at most four bytes a character


def _too_long(text: str) -> bool:
    return len(text) > _SHORTEST_TOO_LONG and len(_utf8(text)) > MAX_STRING_BYTES


# -- configs and graph ------------------------------------------------------------------------------


def _validated(document: Mapping[str, Any]) -> ValidationReport:
    try:
        definition = WorkflowDefinition.model_validate(
            document, context={SKIP_GRAPH_CHECKS: True, CHECK_ERROR_TYPES: True}
        )
    except ValidationError as error:
        problems = [_problem(detail, document) for detail in error.errors(include_url=False)]
        nodes, edges = _partial_views(document)
        if nodes:
            problems.extend(graph_problems(nodes, edges, check_variables=True))
        return _refused(problems)
    problems = definition.graph_problems(check_variables=True)
    if problems:
        return ValidationReport(tuple(problems), None)
    stored = stored_size_problem(definition)
    return _refused([stored]) if stored is not None else ValidationReport((), definition)


def _partial_views(document: Mapping[str, Any]) -> tuple[list[NodeView], list[EdgeView]]:
    """Views of every node and edge that can take part in the graph checks, typed where they parse."""
    raw_nodes = document.get("nodes")
    raw_edges = document.get("edges")
    nodes = [
        view
        for index, raw in enumerate(raw_nodes if isinstance(raw_nodes, list | tuple) else ())
        if (view := _node_view(index, raw)) is not None
    ]
    edges = [
        view
        for index, raw in enumerate(raw_edges if isinstance(raw_edges, list | tuple) else ())
        if (view := _edge_view(index, raw)) is not None
    ]
    return nodes, edges


def _node_view(index: int, raw: object) -> NodeView | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("id"), str):
        return None
    try:
        node = _NODE.validate_python(raw)
    except ValidationError:
        node_type = raw.get("type")
        parent = raw.get("parentId", raw.get("parent_id"))
        return NodeView(
            index=index,
            id=raw["id"],
            type=node_type if isinstance(node_type, str) and node_type in node_types() else None,
            parent_id=parent if isinstance(parent, str) else None,
            handles=None,
            config=None,
        )
    return NodeView(index, node.id, node.type, node.parent_id, source_handles(node), node.data)


def _edge_view(index: int, raw: object) -> EdgeView | None:
    if not isinstance(raw, Mapping):
        return None
    try:
        edge = _EDGE.validate_python(raw)
    except ValidationError:
        fields = [raw.get(key) for key in ("id", "source", "target", "sourceHandle")]
        edge_id, source, target, handle = (value if isinstance(value, str) else None for value in fields)
        return EdgeView(index, edge_id, source, target, handle)
    return EdgeView(index, edge.id, edge.source, edge.target, edge.source_handle)


# -- pydantic errors to pointers --------------------------------------------------------------------

_VALUE_ERROR_PREFIX = "Value error, "


def _problem(detail: ErrorDetails, document: Mapping[str, Any]) -> Problem:
    path = _document_path(detail["loc"], document)
    message = detail["msg"].removeprefix(_VALUE_ERROR_PREFIX)
    if detail["type"] == "tuple_type":
        message = "Input should be a JSON array"
    elif detail["type"] in ("too_short", "too_long"):
        message = message.replace("Tuple should", "Array should")
    if detail["type"] in ("union_tag_invalid", "union_tag_not_found"):
        discriminator = str((detail.get("ctx") or {}).get("discriminator", "'type'")).strip("'")
        path = [*path, discriminator]
        if path[:1] == ["nodes"] and len(path) == 3:
            tag = (detail.get("ctx") or {}).get("tag")
            registry = node_types()
            message = (
                registry.unknown(str(tag))
                if tag is not None
                else f"a node needs a type: one of {', '.join(registry.names)}"
            )
    return Problem(pointer(*path), message)


def _document_path(loc: Sequence[str | int], document: object) -> list[str | int]:
    """The JSON path an error location stands for: pydantic puts union tags (the node type of a
    discriminated union, a member's name in a plain union) and ``[key]`` markers into locations,
    which are not part of the document and are left out."""
    path: list[str | int] = []
    current: object = document
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        if isinstance(current, Mapping) and isinstance(part, str) and part in current:
            if (
                last
                or _descends(current[part], loc[position + 1])
                or not _descends(current, loc[position + 1])
            ):
                path.append(part)
                current = current[part]
                continue
        elif isinstance(current, list | tuple) and isinstance(part, int) and 0 <= part < len(current):
            path.append(part)
            current = current[part]
            continue
        if last and isinstance(current, Mapping) and isinstance(part, str) and part != "[key]":
            path.append(part)  # a missing member
    return path


def _descends(value: object, part: str | int) -> bool:
    if isinstance(value, Mapping):
        return part in value
    return isinstance(value, list | tuple) and isinstance(part, int) and 0 <= part < len(value)
