"""The machine-readable tables of ``docs/node-reference.md``, parsed: each node type's output fields,
each trigger kind's payload paths and the error types. The unit and end-to-end tests hold them against
the code and against real runs, so the reference cannot drift from what runs produce."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
NODE_REFERENCE = DOCS / "node-reference.md"

_CODE = re.compile(r"`([^`]+)`")


def code_spans(cell: str) -> list[str]:
    """The ``code`` spans of a table cell, in order (escaped pipes restored)."""
    return [span.replace("\\|", "|") for span in _CODE.findall(cell)]


def table_after(text: str, heading: str) -> list[list[str]]:
    """The rows (cells as text, header and rule left out) of the first table under ``heading``,
    before the next heading of any level."""
    lines = text.splitlines()
    try:
        start = lines.index(heading)
    except ValueError:
        raise AssertionError(f"no heading {heading!r} in the document") from None
    rows: list[list[str]] = []
    in_table = False
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            in_table = True
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            rows.append(cells)
        elif in_table:
            break
    if len(rows) < 3 or not set(rows[1][0]) <= {"-", ":"}:
        raise AssertionError(f"no table under {heading!r}")
    return rows[2:]


def _keyed(rows: list[list[str]], value: Callable[[list[str]], list[str]]) -> dict[str, list[str]]:
    keyed: dict[str, list[str]] = {}
    for row in rows:
        [key] = code_spans(row[0])
        assert key not in keyed, f"{key!r} is in the table twice"
        keyed[key] = value(row)
    return keyed


@cache
def _text() -> str:
    return NODE_REFERENCE.read_text()


def documented_outputs() -> dict[str, list[str]]:
    """Node type -> its output fields, from the table under ``## Outputs``."""
    return _keyed(table_after(_text(), "## Outputs"), lambda row: code_spans(row[1]))


def documented_trigger_paths() -> dict[str, set[str]]:
    """Trigger kind -> the paths under ``trigger`` its runs have, from the table under
    ``## What a run sees as `trigger```."""
    paths_by_kind: dict[str, set[str]] = {}
    for path, kinds in _keyed(
        table_after(_text(), "## What a run sees as `trigger`"), lambda row: code_spans(row[1])
    ).items():
        assert kinds, f"{path} names no kind"
        for kind in kinds:
            paths_by_kind.setdefault(kind, set()).add(path)
    return paths_by_kind


def documented_error_types() -> dict[str, str]:
    """Error type -> its retryable column, from the table under ``## Error types``."""
    return {
        name: cells[0]
        for name, cells in _keyed(table_after(_text(), "## Error types"), lambda row: row[1:]).items()
    }
