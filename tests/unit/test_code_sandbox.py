"""The code node's sandbox (``millrace_common.platform.code_sandbox``) against hostile code: each
escape attempt, runaway and bomb ends as a clear failure of a documented type within a bounded time,
and the sandbox runs the next code as before. The workers are real monty subprocesses."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from millrace_common.contracts.node_errors import NodeErrorType
from millrace_common.language.workflow_configs import code_problem
from millrace_common.platform.code_sandbox import CodeFailure, CodeLimits, CodeResult, CodeSandbox
from millrace_node_runner.domain.outcomes import Failed, Succeeded
from millrace_node_runner.service_layer.code import code_outcome

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
LIMITS = CodeLimits(
    cpu_seconds=1.0, memory_bytes=32 * 1024 * 1024, output_bytes=64 * 1024, recursion_depth=100
)
BOUND_SECONDS = 8.0
"""A failure must come back within this, whatever the code does (1 s budget + 1 s grace + start)."""


@pytest.fixture(scope="module")
async def sandbox() -> AsyncIterator[CodeSandbox]:
    box = CodeSandbox(LIMITS)
    await box.start()
    yield box
    await box.stop()


def main(body: str) -> str:
    return "def main():\n" + "".join(f"    {line}\n" for line in body.splitlines())


async def outcome(sandbox: CodeSandbox, code: str, **context: object):
    started = time.monotonic()
    result = await sandbox.run(code, {"trigger": {"n": 1}, "nodes": {}, "vars": {}, **context}, now=NOW)
    assert time.monotonic() - started < BOUND_SECONDS
    return result


async def test_main_reads_the_context_and_returns_json(sandbox):
    result = await outcome(
        sandbox,
        main('print("seen", trigger["n"])\nreturn {"n": trigger["n"] + 1, "item": item, "at": now}'),
        item={"sku": "a"},
    )
    assert result == CodeResult(
        {"n": 2, "item": {"sku": "a"}, "at": "2026-12-02T09:30:00+00:00"}, printed="seen 1\n"
    )


async def test_the_clock_stands_at_the_passed_now(sandbox):
    code = "import time\nfrom datetime import datetime\n" + main(
        "return [time.time(), datetime.now().isoformat()]"
    )
    result = await outcome(sandbox, code)
    assert isinstance(result, CodeResult)
    assert result.result == [NOW.timestamp(), "2026-12-02T09:30:00"]


ESCAPES = {
    "subclasses": "return str(().__class__.__bases__[0].__subclasses__())",
    "globals": "def f():\n    pass\nreturn str(f.__globals__)",
    "builtins": "return str(__builtins__)",
    "frames": "try:\n    1 / 0\nexcept Exception as e:\n    return str(e.__traceback__.tb_frame.f_globals)",
    "type mro": "return str(type(1).__mro__)",
    "getattr dunder": "return str(getattr(1, '__class__'))",
}


@pytest.mark.parametrize("body", ESCAPES.values(), ids=ESCAPES.keys())
async def test_the_classic_escapes_find_nothing_to_reach(sandbox, body):
    result = await outcome(sandbox, main(body))
    assert isinstance(result, CodeFailure)
    assert result.error_type == NodeErrorType.CODE_ERROR
    assert "AttributeError" in result.message or "NameError" in result.message


FORBIDDEN = {
    "import os": "import os\n    return os.listdir('/')",
    "os.getenv": "import os\n    return os.getenv('HOME')",
    "open": "return open('/etc/passwd').read()",
    "pathlib": "from pathlib import Path\n    return Path('/etc/passwd').read_text()",
    "socket": "import socket\n    return 1",
    "subprocess": "import subprocess\n    return 1",
}


@pytest.mark.parametrize("body", FORBIDDEN.values(), ids=FORBIDDEN.keys())
async def test_io_is_refused_as_forbidden(sandbox, body):
    result = await outcome(sandbox, "def main():\n    " + body + "\n")
    assert isinstance(result, CodeFailure)
    assert result.error_type == NodeErrorType.CODE_FORBIDDEN, result.message


async def test_an_endless_loop_is_stopped_at_its_time_budget(sandbox):
    started = time.monotonic()
    result = await outcome(sandbox, main("while True:\n    pass"))
    assert isinstance(result, CodeFailure) and result.error_type == NodeErrorType.CODE_TIMEOUT
    assert time.monotonic() - started >= LIMITS.cpu_seconds * 0.9


BOMBS = {
    "one huge string": "return 'a' * (10 ** 10)",
    "growing list": "x = []\nwhile True:\n    x.append([0] * 100000)",
    "huge integer": "return 10 ** 10 ** 8",
}


@pytest.mark.parametrize("body", BOMBS.values(), ids=BOMBS.keys())
async def test_memory_bombs_hit_the_memory_limit(sandbox, body):
    result = await outcome(sandbox, main(body))
    assert isinstance(result, CodeFailure)
    assert result.error_type == NodeErrorType.CODE_MEMORY_LIMIT, result.message


async def test_deep_recursion_hits_the_recursion_limit(sandbox):
    code = "def down(n):\n    return down(n + 1)\n" + main("return down(0)")
    result = await outcome(sandbox, code)
    assert isinstance(result, CodeFailure)
    assert result.error_type == NodeErrorType.CODE_RECURSION_LIMIT
    assert result.line == 2


async def test_an_output_larger_than_the_limit_is_refused(sandbox):
    result = await outcome(sandbox, main("return ['x' * 1000] * 200"))
    assert isinstance(result, CodeFailure) and result.error_type == NodeErrorType.CODE_OUTPUT
    assert "65,536" in result.message


@pytest.mark.parametrize(
    "body", ["return {1, 2}", "return float('nan')", "return {1: 'a'}", "class A:\n    pass\nreturn A()"]
)
async def test_a_result_that_is_not_json_is_refused(sandbox, body):
    code = "class A:\n    pass\n" + main(body.replace("class A:\n    pass\n", ""))
    result = await outcome(sandbox, code)
    assert isinstance(result, CodeFailure) and result.error_type == NodeErrorType.CODE_OUTPUT


async def test_an_exception_names_its_type_and_line(sandbox):
    result = await outcome(sandbox, main("x = 1\nraise ValueError('no good')"))
    assert result == CodeFailure(NodeErrorType.CODE_ERROR, "ValueError: no good (line 3)", 3)


async def test_the_sandbox_still_runs_code_after_every_kind_of_failure(sandbox):
    for body in ("while True:\n    pass", "return 'a' * (10 ** 10)", "return 10 ** 10 ** 8"):
        await outcome(sandbox, main(body))
    assert await outcome(sandbox, main("return 42")) == CodeResult(42, "")


def test_save_time_check_names_the_line_of_a_syntax_error():
    assert code_problem("def main():\n    return (\n") == "line 2: Python syntax error: '(' was never closed"
    assert code_problem("x = 1\n") == "the code must define main() at its top level, taking no arguments"
    assert code_problem(main("return 1")) is None


@pytest.mark.parametrize("error_type", [t for t in NodeErrorType if t.value.startswith("code_")])
def test_the_runner_reports_each_sandbox_failure_as_its_own_node_error(error_type):
    outcome = code_outcome(CodeFailure(error_type, "why"))
    assert isinstance(outcome, Failed)
    assert (outcome.error.type, outcome.error.message) == (error_type.value, "why")
    assert outcome.error.retryable == (error_type == NodeErrorType.CODE_CRASHED)


def test_the_runner_reports_a_result_with_what_was_printed():
    assert code_outcome(CodeResult({"a": 1}, "hi\n")) == Succeeded({"result": {"a": 1}, "printed": "hi\n"})
