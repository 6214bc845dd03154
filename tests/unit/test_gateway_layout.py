"""The gateway keeps the house's rooms (docs/architecture.md, "Inside a service"): SQL only in its
adapters, routes that reach storage only through use cases, a pure domain; and one writer for the
trigger index, the gateway, whatever another service does ("Who writes which table")."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = ROOT / "services" / "gateway" / "src" / "millrace_gateway"
STATEMENTS = {"select", "insert", "update", "delete", "text"}


def imports(path: Path) -> list[tuple[str, set[str]]]:
    """(module, names) for every import in the file."""
    found: list[tuple[str, set[str]]] = []
    for statement in ast.walk(ast.parse(path.read_text())):
        if isinstance(statement, ast.ImportFrom) and statement.module:
            found.append((statement.module, {alias.name for alias in statement.names}))
        elif isinstance(statement, ast.Import):
            found.extend((alias.name, set()) for alias in statement.names)
    return found


def modules(room: str) -> list[Path]:
    return sorted((GATEWAY / room).rglob("*.py")) if room else sorted(GATEWAY.glob("*.py"))


def test_only_the_gateways_adapters_hold_sql():
    outside = [path for room in ("", "domain", "service_layer", "entrypoints") for path in modules(room)]
    offenders = {
        str(path.relative_to(GATEWAY)): module
        for path in outside
        for module, names in imports(path)
        if module == "millrace_common.platform.tables"
        or (module.startswith("sqlalchemy") and names & STATEMENTS)
        or module.startswith("sqlalchemy.dialects")
    }
    assert offenders == {}


def test_the_gateways_routes_reach_storage_only_through_use_cases():
    offenders = {
        str(path.relative_to(GATEWAY)): module
        for path in modules("entrypoints")
        for module, _ in imports(path)
        # The caller's identity types come from the security adapter; checking them is a use case.
        if (module.startswith("millrace_gateway.adapters") and module != "millrace_gateway.adapters.security")
        or module
        in {"millrace_common.platform.outbox", "millrace_common.platform.callers", "sqlalchemy.ext.asyncio"}
    }
    assert offenders == {}


def test_the_gateways_domain_is_pure():
    forbidden = (
        "millrace_gateway.adapters",
        "millrace_gateway.service_layer",
        "millrace_gateway.entrypoints",
        "sqlalchemy",
        "fastapi",
        "starlette",
        "aiokafka",
        "httpx",
        "asyncio",
    )
    offenders = {
        str(path.relative_to(GATEWAY)): module
        for path in modules("domain")
        for module, _ in imports(path)
        if module.startswith(forbidden)
    }
    assert offenders == {}


def test_only_the_gateway_writes_the_trigger_index():
    writes = re.compile(
        r"(insert|update|delete)\(\s*(active_triggers|workflow_triggers)\b"
        r"|(insert\s+into|update|delete\s+from)\s+(active_triggers|workflow_triggers)\b",
        re.IGNORECASE,
    )
    writers = sorted(
        str(path.relative_to(ROOT))
        for path in (ROOT / "services").glob("*/src/**/*.py")
        if writes.search(path.read_text())
    )
    assert writers == ["services/gateway/src/millrace_gateway/adapters/trigger_index.py"]
