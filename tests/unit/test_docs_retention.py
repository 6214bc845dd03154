"""Every table the migrations create has a retention: pruned after a documented time by the service
that writes it, or declared as not growing (``millrace_common.platform.retention``); and
docs/operations.md ("Retention of every table") lists the same, so the code and the document cannot
drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from millrace_common.platform import human_tables, tables
from millrace_common.platform.retention import RETENTION, Pruned, described

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = ROOT / "libs/common/src/millrace_common/platform/migrations/versions"
HEADING = "### Retention of every table"


def created_tables() -> set[str]:
    text = "\n".join(p.read_text() for p in MIGRATIONS.glob("*.py"))
    created = set(re.findall(r"create table (\w+)", text, re.IGNORECASE))
    dropped = set(re.findall(r"op\.drop_table\(\"(\w+)\"\)", text))
    return created - dropped


def documented_rows() -> dict[str, list[str]]:
    text = (ROOT / "docs/operations.md").read_text()
    assert HEADING in text
    section = text.split(HEADING, 1)[1].split("\n#", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


def test_every_table_the_migrations_create_has_a_retention():
    assert created_tables() == set(RETENTION)


def test_every_table_the_services_query_has_a_retention():
    assert human_tables.metadata is tables.metadata  # one schema, in two modules
    assert set(tables.metadata.tables) <= set(RETENTION)


def test_the_operations_guide_lists_every_table_with_the_retention_the_code_declares():
    rows = documented_rows()
    assert set(rows) == set(RETENTION)
    for table, retention in RETENTION.items():
        if isinstance(retention, Pruned):
            assert rows[table] == [retention.kept, retention.owner, retention.setting], table
        else:
            assert rows[table] == [described(retention), "", ""], table
