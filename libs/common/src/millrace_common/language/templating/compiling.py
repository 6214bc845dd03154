"""Compiling a template once (cached by its source): checked, prepared for the sandbox, and marked as
one native expression or as text; a template of only text and variable paths is also kept as those
paths, rendered without Jinja."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from jinja2 import nodes
from jinja2.environment import Template
from jinja2.exceptions import TemplateSyntaxError
from jinja2.visitor import NodeTransformer
from pydantic import JsonValue

from millrace_common.language.templating.checking import _FUNCTION_ARITY, TemplateCheck, _Inspector
from millrace_common.language.templating.conversion import _as_text, _to_json
from millrace_common.language.templating.errors import TemplateError
from millrace_common.language.templating.limits import MAX_SOURCE_CHARS
from millrace_common.language.templating.sandbox import (
    _AS_TEXT_FILTER,
    _LOOP_BUDGET_FILTER,
    _SLICE_FILTER,
    _Sandbox,
    _sandbox,
)

_RESULT = "_result"


_Path = tuple[str, tuple[str | int, ...]]
"""A variable and the keys read from it: ``trigger.lead["email"]`` is ``("trigger", ("lead", "email"))``."""
_NOT_PLAIN = object()


@dataclass(frozen=True)
class _Compiled:
    check: TemplateCheck
    template: Template
    native: bool  # the template is one expression whose value is read back as it is, not as text
    # Text and variable paths, when that is all the template is (most are): rendered without Jinja.
    paths: tuple[str | _Path, ...] | None = None


def _plain_paths(tree: nodes.Template) -> tuple[str | _Path, ...] | None:
    """The template as text and variable paths, or None when it uses anything else."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts: list[str | _Path] = []
    for part in tree.body[0].nodes:
        if isinstance(part, nodes.TemplateData):
            parts.append(part.data)
            continue
        keys: list[str | int] = []
        while isinstance(part, (nodes.Getattr, nodes.Getitem)):
            if isinstance(part, nodes.Getattr):
                keys.append(part.attr)
            elif isinstance(part.arg, nodes.Const) and type(part.arg.value) in (str, int):
                keys.append(part.arg.value)
            else:
                return None
            part = part.node
        if not isinstance(part, nodes.Name) or part.name in _FUNCTION_ARITY:
            return None
        if any(isinstance(name, str) and name.startswith("_") for name in (part.name, *keys)):
            return None
        parts.append((part.name, tuple(reversed(keys))))
    return tuple(parts)


def _render_paths(compiled: _Compiled, context: Mapping[str, JsonValue], limit: int) -> object:
    """``render_string`` for a template of text and paths, the sandbox's lookups done directly; a path
    that does not resolve gives ``_NOT_PLAIN``, and Jinja then renders (and words the error)."""
    assert compiled.paths is not None
    values: list[object] = []
    for part in compiled.paths:
        if isinstance(part, str):
            values.append(part)
            continue
        root, keys = part
        if root not in context:
            return _NOT_PLAIN
        value: object = context[root]
        for key in keys:
            if isinstance(value, Mapping):
                if not (isinstance(key, str) and key in value):
                    return _NOT_PLAIN
            elif not (
                isinstance(value, (list, tuple, str))
                and isinstance(key, int)
                and -len(value) <= key < len(value)
            ):
                return _NOT_PLAIN
            value = value[key]  # type: ignore[index]
        values.append(_ValueOf(value))
    if compiled.native:
        (result,) = [v.value for v in values if isinstance(v, _ValueOf)]
        converted = _to_json(result)
        if isinstance(converted, str) and len(converted) > limit:
            raise TemplateError(f"the rendered text is longer than {limit} characters")
        return converted
    return _join_within((v if isinstance(v, str) else _as_text(v.value) for v in values), limit)  # type: ignore[union-attr]


@dataclass(frozen=True, slots=True)
class _ValueOf:
    value: object


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> _Compiled:
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"the template is longer than {MAX_SOURCE_CHARS} characters")
    environment = _sandbox()
    try:
        tree = environment.parse(source)
        check = TemplateCheck(references=_Inspector().inspect(tree))
        paths = _plain_paths(tree)
        tree = _prepared(tree, environment)
        single = _single_expression(tree)
        if single is None:
            return _Compiled(check, environment.from_string(tree), native=False, paths=paths)
        assignment = nodes.Assign(nodes.Name(_RESULT, "store"), single, lineno=single.lineno)
        expression_tree = nodes.Template([assignment], lineno=1)
        expression_tree.set_environment(environment)
        return _Compiled(check, environment.from_string(expression_tree), native=True, paths=paths)
    except TemplateSyntaxError as error:
        raise TemplateError(f"syntax error on line {error.lineno}: {error.message}") from error
    except RecursionError as error:
        raise TemplateError("the template is nested too deeply") from error


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is exactly one ``{{ ... }}``, whitespace around allowed."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = [
        part
        for part in tree.body[0].nodes
        if not (isinstance(part, nodes.TemplateData) and not part.data.strip())
    ]
    if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
        return parts[0]
    return None


class _Slices(NodeTransformer):
    """``a[1:3]`` becomes ``a | _sliced(1, 3, none)``: Jinja compiles slices to plain Python subscripts,
    past the sandbox's ``getitem``, and a slice copies, so it is checked and charged like ``*``."""

    def visit_Getitem(self, node: nodes.Getitem) -> nodes.Node:
        node = self.generic_visit(node)
        if not isinstance(node.arg, nodes.Slice):
            return node
        bounds = [node.arg.start, node.arg.stop, node.arg.step]
        arguments = [nodes.Const(None) if part is None else part for part in bounds]
        return nodes.Filter(node.node, _SLICE_FILTER, arguments, [], None, None, lineno=node.lineno)


def _prepared(tree: nodes.Template, environment: _Sandbox) -> nodes.Template:
    # Every loop draws from one per-render budget, so nested loops over large data cannot run for ever;
    # and `~` writes its operands the way output does (null as "", booleans as true/false, JSON).
    tree = _Slices().visit(tree)
    for loop in list(tree.find_all(nodes.For)):
        loop.iter = nodes.Filter(loop.iter, _LOOP_BUDGET_FILTER, [], [], None, None, lineno=loop.lineno)
    for concat in list(tree.find_all(nodes.Concat)):
        concat.nodes = [
            nodes.Filter(part, _AS_TEXT_FILTER, [], [], None, None, lineno=part.lineno)
            for part in concat.nodes
        ]
    tree.set_environment(environment)
    return tree


def _evaluate(expression: Template, variables: dict[str, object]) -> object:
    context = expression.new_context(variables)
    for _ in expression.root_render_func(context):
        pass
    return context.vars[_RESULT]


def _join_within(chunks: Iterable[str], limit: int) -> str:
    parts: list[str] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise TemplateError(f"the rendered text is longer than {limit} characters")
        parts.append(chunk)
    return "".join(parts)
