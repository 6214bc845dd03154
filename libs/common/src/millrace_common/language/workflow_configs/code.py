"""The code node's config: a short Python function over the template context, run in the sandbox."""

from __future__ import annotations

import ast
from typing import ClassVar

from pydantic import Field, field_validator

from millrace_common.language.workflow_configs.base import NodeConfig, _invalid

CODE_CONTEXT_NAMES = ("trigger", "nodes", "vars", "item", "index", "workflow", "now")
"""The globals a code node's ``main()`` sees: the template context and the moment it was scheduled."""

DEFAULT_CODE = 'def main():\n    return {"received": trigger}\n'


class CodeConfig(NodeConfig):
    """``code`` defines ``main()``, which returns the node's ``result`` (JSON). It is Python, run by
    the node runner in a sandbox (``pydantic-monty``): no imports of I/O, no network, no filesystem,
    and the clock stands at ``now``. ``code`` is never rendered as a template; the context is given
    to it whole (``trigger``, ``nodes``, ``vars``, ``workflow``, in a loop ``item`` and ``index``)."""

    literal_fields = frozenset({"code"})
    wants_context: ClassVar[bool] = True

    code: str = Field(
        default=DEFAULT_CODE,
        min_length=1,
        max_length=65_536,
        description="Python defining main(); the context names and now are its globals",
        json_schema_extra={"format": "python", "x-context-names": list(CODE_CONTEXT_NAMES)},
    )
    timeout_seconds: float = Field(default=10, gt=0, le=300)

    @field_validator("code")
    @classmethod
    def _python_with_main(cls, value: str) -> str:
        problem = code_problem(value)
        if problem is not None:
            raise _invalid(problem)
        return value


def code_problem(code: str) -> str | None:
    """Why ``code`` cannot run as a code node (a syntax error with its line, or no ``main``), or None."""
    try:
        tree = ast.parse(code, filename="code.py")
    except SyntaxError as error:
        return f"line {error.lineno}: Python syntax error: {error.msg}"
    except (RecursionError, MemoryError, ValueError) as error:
        return f"the code cannot be parsed ({type(error).__name__}: nested too deeply or not text)"
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and not node.args.args and not node.args.posonlyargs
    }
    if "main" not in defined:
        return "the code must define main() at its top level, taking no arguments"
    return None
