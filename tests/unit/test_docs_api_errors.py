"""Every error ``code`` a service can answer is documented in docs/api.md's error table, and the table
names no code the services do not have. The codes are read from the source: every ``Problem(...)`` /
``ApiError(...)`` / ``problem_response(...)`` with a literal code, every ``code = "..."`` of an error
class, and the status codes' defaults in ``millrace_common.platform.problems``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from millrace_common.contracts.messages.webhooks import SignatureProblem
from millrace_common.platform.problems import STATUS_CODES

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "libs" / "common" / "src", *sorted((ROOT / "services").glob("*/src"))]
# Which positional argument holds the code, by the callable's name: Problem(status, code, detail),
# problem_response(request, status, code, detail), problem_body(status, code, detail).
CODE_ARGUMENT = {"Problem": 1, "ApiError": 1, "problem_response": 2, "problem_body": 1}


def codes_in_source() -> dict[str, set[str]]:
    """code -> the files that answer it."""
    found: dict[str, set[str]] = {}

    def add(code: str, path: Path) -> None:
        found.setdefault(code, set()).add(str(path.relative_to(ROOT)))

    for source in SOURCES:
        for path in source.rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Call):
                    name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                    index = CODE_ARGUMENT.get(name or "")
                    if index is not None and len(node.args) > index and _has_status(node, index):
                        argument = node.args[index]
                        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                            add(argument.value, path)
                elif isinstance(node, ast.ClassDef):
                    for statement in node.body:
                        if (
                            isinstance(statement, ast.Assign)
                            and [getattr(t, "id", None) for t in statement.targets] == ["code"]
                            and isinstance(statement.value, ast.Constant)
                        ):
                            add(statement.value.value, path)
    for code in [*STATUS_CODES.values(), "http_error"]:
        add(code, ROOT / "libs/common/src/millrace_common/platform/problems.py")
    for problem in SignatureProblem:  # a webhook's 401 carries the signature check's reason as its code
        add(problem.value, ROOT / "services/gateway/src/millrace_gateway/entrypoints/http/webhooks.py")
    return found


def _has_status(call: ast.Call, code_index: int) -> bool:
    """The argument before the code is an HTTP status (a number, or an expression such as
    ``error.status``): this tells an HTTP problem from the workflow checker's own Problem(pointer, ...)."""
    status = call.args[code_index - 1]
    return not (isinstance(status, ast.Constant) and isinstance(status.value, str))


def documented_codes() -> set[str]:
    text = (ROOT / "docs" / "api.md").read_text()
    table = text.split("### Error codes", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.MULTILINE))


def test_the_source_answers_a_plausible_number_of_codes():
    codes = codes_in_source()
    assert {"not_found", "invalid_request", "unavailable", "conflict", "not_assignee"} <= set(codes)


def test_every_code_the_services_answer_is_documented():
    missing = {
        code: sorted(paths) for code, paths in codes_in_source().items() if code not in documented_codes()
    }
    assert not missing, f"add these to docs/api.md's error table: {missing}"


def test_the_docs_name_no_code_the_services_do_not_answer():
    assert documented_codes() - set(codes_in_source()) == set()
