"""Templates in workflow node configs (``Hello {{ trigger.record.data.name }}``), rendered in a sandbox.

A template reads JSON data through a small, fixed language: attribute and item access on objects and
lists, literals, arithmetic, comparisons, the filters in :data:`TEMPLATE_FILTERS`, the functions in
:data:`TEMPLATE_FUNCTIONS` and the tags ``{% if %}`` and ``{% for %}``. Nothing else is reachable: no
Python attributes or methods, no globals, no includes. :func:`check_template` refuses the rest when a
workflow is saved; :func:`render_value` re-checks at run time and bounds loops, output and arithmetic.

Rendering is deterministic: the clock and the id generator are parameters, never read from the system.

What a render may make is bounded in total, however it is made: one render (a ``render_value`` call,
or a ``render_string`` call on its own) may handle at most :data:`MAX_RENDER_ITEMS` values and write at
most :data:`MAX_RENDER_BYTES` of JSON and text. Each value is charged before it is built, so a result
that would be larger is refused before it exists: lists repeated inside lists
(``[[0] * 65536] * 65536``) cost what they would cost written out, not what the shared references cost
in memory.
"""

from __future__ import annotations

import functools
import json
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, NoReturn, TypeGuard, TypeVar
from uuid import UUID

from jinja2 import nodes
from jinja2.environment import Template
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.exceptions import TemplateSyntaxError, UndefinedError
from jinja2.runtime import Context, LoopContext, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing, pass_context
from jinja2.visitor import NodeTransformer
from pydantic import JsonValue

__all__ = [
    "MAX_RENDER_BYTES",
    "MAX_RENDER_ITEMS",
    "MAX_SOURCE_CHARS",
    "TEMPLATE_FILTERS",
    "TEMPLATE_FUNCTIONS",
    "TemplateCheck",
    "TemplateError",
    "check_template",
    "render_string",
    "render_value",
]

MAX_SOURCE_CHARS = 16 * 1024
DEFAULT_MAX_OUTPUT_CHARS = 64 * 1024
MAX_LOOP_ITERATIONS = 10_000
MAX_NESTING = 100
MAX_SEQUENCE_LENGTH = 64 * 1024
"""Items one ``*`` or ``+`` may build (the items of nested lists and objects count too), or characters."""
MAX_POWER_BITS = 10_000
MAX_RENDER_ITEMS = 1_000_000
"""Values one render may handle in all: built by ``*``, ``+`` and slices, read by the filters that walk a
list, written out as JSON (every item of every list and object is one)."""
MAX_RENDER_BYTES = 1024 * 1024
"""JSON and text one render may write in all: results, text written from values (``{{ }}`` in text,
``~``, ``join``), ``json`` and the text filters' results, about as many bytes as compact JSON takes."""

_RESULT = "_result"
_LOOP_BUDGET = "_loop_budget"
_LOOP_BUDGET_FILTER = "_within_loop_budget"
_AS_TEXT_FILTER = "_as_text"
_SLICE_FILTER = "_sliced"
_LOOP_FIELDS = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem"}
)
_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|z|[+-]\d{2}:?\d{2})?)?"
)
_CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹"}
_ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW"})


class TemplateError(ValueError):
    """A template that cannot be accepted or rendered; the message says why, for the person who wrote it."""


@dataclass(frozen=True)
class TemplateCheck:
    """What a template reads: each static path from a root name, e.g. ``("nodes", "classify", "output")``."""

    references: frozenset[tuple[str, ...]]


def check_template(source: str) -> TemplateCheck:
    """Check a template when it is saved: syntax, allowed filters, functions and tags, no private names.

    Raises :class:`TemplateError` with the first problem found; returns the variable paths it reads.
    A string without ``{{``, ``{%`` or ``{#`` is plain text and reads nothing.
    """
    if not _looks_like_template(source):
        return TemplateCheck(references=frozenset())
    return _compile(source).check


def render_value(
    value: JsonValue,
    context: Mapping[str, JsonValue],
    *,
    now: datetime,
    new_id: Callable[[], UUID],
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> JsonValue:
    """Render every string inside ``value`` (object keys are left alone) against ``context``.

    A string that is one ``{{ expression }}`` becomes the expression's JSON value; any other string
    renders to text. Values taken from ``context`` are never rendered again. Raises
    :class:`TemplateError`, prefixed with where in ``value`` the failing string is.
    """

    def render(item: JsonValue, location: str) -> JsonValue:
        if isinstance(item, list):
            return [render(child, f"{location}[{index}]") for index, child in enumerate(item)]
        if isinstance(item, dict):
            return {
                key: render(child, f"{location}.{key}" if location else key) for key, child in item.items()
            }
        if not isinstance(item, str):
            return item
        try:
            return render_string(item, context, now=now, new_id=new_id, max_output_chars=max_output_chars)
        except TemplateError as error:
            if not location:
                raise
            raise TemplateError(f"{location}: {error}") from error

    with _rendering():
        return render(value, "")


def render_string(
    source: str,
    context: Mapping[str, JsonValue],
    *,
    now: datetime,
    new_id: Callable[[], UUID],
    max_output_chars: int = DEFAULT_MAX_OUTPUT_CHARS,
) -> JsonValue:
    """Render one template string; the whole-expression case returns a native JSON value."""
    if not _looks_like_template(source):
        return source
    compiled = _compile(source)
    with _rendering():
        if compiled.paths is not None:
            fast = _render_paths(compiled, context, max_output_chars)
            if fast is not _NOT_PLAIN:
                return fast  # type: ignore[return-value]
        return _render_with_jinja(
            compiled, context, now=now, new_id=new_id, max_output_chars=max_output_chars
        )


def _render_with_jinja(
    compiled: _Compiled,
    context: Mapping[str, JsonValue],
    *,
    now: datetime,
    new_id: Callable[[], UUID],
    max_output_chars: int,
) -> JsonValue:
    variables: dict[str, object] = {
        **context,
        **_functions(now, new_id),
        _LOOP_BUDGET: _LoopBudget(MAX_LOOP_ITERATIONS),
    }
    with _rendering():
        return _render_variables(compiled, variables, context, max_output_chars)


def _render_variables(
    compiled: _Compiled, variables: dict[str, object], context: Mapping[str, JsonValue], max_output_chars: int
) -> JsonValue:
    try:
        if compiled.native:
            result = _to_json(_evaluate(compiled.template, variables))
            if isinstance(result, str) and len(result) > max_output_chars:
                raise TemplateError(f"the rendered text is longer than {max_output_chars} characters")
            return result
        return _join_within(compiled.template.generate(variables), max_output_chars)
    except TemplateError:
        raise
    except _MissingValue as error:
        raise TemplateError(_describe_missing(error, context)) from error
    except JinjaError as error:
        raise TemplateError(error.message or type(error).__name__) from error
    except (TypeError, ValueError, ArithmeticError, LookupError) as error:
        raise TemplateError(f"cannot evaluate the template: {error}") from error


def _looks_like_template(source: str) -> bool:
    return "{{" in source or "{%" in source or "{#" in source


# --- compiling -------------------------------------------------------------------------------------


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


# --- the check done at save time ------------------------------------------------------------------

_FUNCTION_ARITY: Mapping[str, tuple[int, int]] = {
    "now": (0, 0),
    "today": (0, 0),
    "timestamp": (0, 0),
    "uuid": (0, 0),
    "days_ago": (1, 1),
    "days_from_now": (1, 1),
}
_FILTER_ARITY: Mapping[str, tuple[int, int]] = {
    "upper": (0, 0),
    "lower": (0, 0),
    "title": (0, 0),
    "trim": (0, 0),
    "length": (0, 0),
    "first": (0, 0),
    "last": (0, 0),
    "sum": (0, 0),
    "min": (0, 0),
    "max": (0, 0),
    "join": (0, 1),
    "json": (0, 1),
    "keys": (0, 0),
    "values": (0, 0),
    "default": (0, 1),
    "currency": (0, 1),
    "date": (0, 1),
    "datetime": (0, 1),
}
_TEST_NAMES = frozenset(
    {"defined", "undefined", "none", "boolean", "number", "string", "mapping", "sequence", "even", "odd"}
)
TEMPLATE_FUNCTIONS = frozenset(_FUNCTION_ARITY)
TEMPLATE_FILTERS = frozenset(_FILTER_ARITY)

_PLAIN_NODES = (
    nodes.Template,
    nodes.Output,
    nodes.TemplateData,
    nodes.If,
    nodes.Const,
    nodes.Tuple,
    nodes.List,
    nodes.Dict,
    nodes.Pair,
    nodes.CondExpr,
    nodes.Compare,
    nodes.Operand,
    nodes.Concat,
    nodes.Slice,
    nodes.And,
    nodes.Or,
    nodes.Not,
    nodes.Neg,
    nodes.Pos,
    nodes.Add,
    nodes.Sub,
    nodes.Mul,
    nodes.Div,
    nodes.FloorDiv,
    nodes.Pow,
    nodes.Mod,
)
_TAGS: Mapping[type[nodes.Node], str] = {
    nodes.Assign: "set",
    nodes.AssignBlock: "set",
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.FilterBlock: "filter",
    nodes.With: "with",
    nodes.Block: "block",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from",
    nodes.Extends: "extends",
    nodes.ScopedEvalContextModifier: "autoescape",
    nodes.Scope: "autoescape",
}
_CALLABLE = ", ".join(f"{name}({'n' if high else ''})" for name, (_, high) in _FUNCTION_ARITY.items())


class _Inspector:
    """Walks a parsed template, refusing what the sandbox does not offer and collecting references."""

    def __init__(self) -> None:
        self._references: set[tuple[str, ...]] = set()

    def inspect(self, tree: nodes.Template) -> frozenset[tuple[str, ...]]:
        self._visit(tree, frozenset(), 0)
        return frozenset(self._references)

    def _visit(self, node: nodes.Node, local: frozenset[str], depth: int) -> None:
        if depth > MAX_NESTING:
            raise TemplateError("the template is nested too deeply")
        if isinstance(node, nodes.For):
            self._visit_loop(node, local, depth)
        elif isinstance(node, nodes.Name):
            self._visit_root(node.name, (), local)
        elif isinstance(node, (nodes.Getattr, nodes.Getitem)):
            self._visit_access(node, local, depth)
        elif isinstance(node, nodes.Call):
            self._visit_call(node, local, depth)
        elif isinstance(node, nodes.Filter):
            self._visit_filter(node, local, depth)
        elif isinstance(node, nodes.Test):
            if node.name not in _TEST_NAMES:
                raise TemplateError(f"unknown test '{node.name}'")
            self._check_arguments(f"test '{node.name}'", node, (0, 0))
            self._visit(node.node, local, depth + 1)
        elif isinstance(node, nodes.Mod) and _is_text_constant(node.left):
            raise TemplateError("string formatting with '%' is not allowed")
        elif isinstance(node, _PLAIN_NODES):
            for child in node.iter_child_nodes():
                self._visit(child, local, depth + 1)
        elif type(node) in _TAGS:
            tag = _TAGS[type(node)]
            raise TemplateError(f"the '{tag}' tag is not allowed; templates may only use 'if' and 'for'")
        else:
            raise TemplateError(f"'{type(node).__name__}' is not allowed in templates")

    def _visit_loop(self, node: nodes.For, local: frozenset[str], depth: int) -> None:
        if node.recursive:
            raise TemplateError("recursive loops are not allowed")
        self._visit(node.iter, local, depth + 1)
        targets = frozenset(name.name for name in node.target.find_all(nodes.Name))
        if isinstance(node.target, nodes.Name):
            targets = frozenset({node.target.name})
        for name in targets:
            _refuse_private(name)
            if name in _FUNCTION_ARITY or name in {"self", "loop"}:
                raise TemplateError(f"'{name}' cannot be used as a loop variable")
        inner = local | targets | {"loop"}
        if node.test is not None:
            self._visit(node.test, inner, depth + 1)
        for child in node.body:
            self._visit(child, inner, depth + 1)
        for child in node.else_:
            self._visit(child, local, depth + 1)

    def _visit_root(self, name: str, path: tuple[str, ...], local: frozenset[str]) -> None:
        _refuse_private(name)
        if name == "self":
            raise TemplateError("'self' is not available in templates")
        if name in _FUNCTION_ARITY:
            raise TemplateError(f"'{name}' is a function; call it as {name}()")
        if name not in local:
            self._references.add((name, *path))

    def _visit_access(self, node: nodes.Getattr | nodes.Getitem, local: frozenset[str], depth: int) -> None:
        accessors: list[nodes.Getattr | nodes.Getitem] = []
        base: nodes.Node = node
        while isinstance(base, (nodes.Getattr, nodes.Getitem)):
            accessors.append(base)
            base = base.node
        if depth + len(accessors) > MAX_NESTING:
            raise TemplateError("the template is nested too deeply")
        path: list[str] = []
        static = True
        for accessor in reversed(accessors):
            part = _static_part(accessor)
            if part is None and isinstance(accessor, nodes.Getitem):
                static = False
                self._visit(accessor.arg, local, depth + 1)
            elif static and part is not None:
                path.append(part)
        if isinstance(base, nodes.Name):
            self._visit_root(base.name, tuple(path), local)
        else:
            self._visit(base, local, depth + 1)

    def _visit_call(self, node: nodes.Call, local: frozenset[str], depth: int) -> None:
        callee = node.node
        if not isinstance(callee, nodes.Name):
            raise TemplateError(
                f"calling {_spelling(callee)} is not allowed; only these functions can be called: {_CALLABLE}"
            )
        if callee.name not in _FUNCTION_ARITY:
            _refuse_private(callee.name)
            raise TemplateError(f"unknown function '{callee.name}'")
        self._check_arguments(f"{callee.name}()", node, _FUNCTION_ARITY[callee.name])
        for argument in node.args:
            self._visit(argument, local, depth + 1)

    def _visit_filter(self, node: nodes.Filter, local: frozenset[str], depth: int) -> None:
        if node.name not in _FILTER_ARITY:
            raise TemplateError(f"unknown filter '{node.name}'")
        self._check_arguments(f"filter '{node.name}'", node, _FILTER_ARITY[node.name])
        for child in node.iter_child_nodes():
            self._visit(child, local, depth + 1)

    @staticmethod
    def _check_arguments(
        label: str, node: nodes.Call | nodes.Filter | nodes.Test, arity: tuple[int, int]
    ) -> None:
        if node.kwargs or node.dyn_args is not None or node.dyn_kwargs is not None:
            raise TemplateError(f"{label} takes positional arguments only")
        low, high = arity
        given = len(node.args)
        if low <= given <= high:
            return
        if high == 0:
            raise TemplateError(f"{label} takes no arguments ({given} given)")
        if low == high:
            raise TemplateError(
                f"{label} takes exactly {low} argument{'s' if low > 1 else ''} ({given} given)"
            )
        raise TemplateError(f"{label} takes at most {high} argument{'s' if high > 1 else ''} ({given} given)")


def _static_part(accessor: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(accessor, nodes.Getattr):
        _refuse_private(accessor.attr)
        return accessor.attr
    key = accessor.arg
    if isinstance(key, nodes.Const):
        if isinstance(key.value, str):
            _refuse_private(key.value)
            return key.value
        if isinstance(key.value, int) and not isinstance(key.value, bool):
            return str(key.value)
    return None


def _refuse_private(name: str) -> None:
    if name.startswith("_"):
        raise TemplateError(f"access to '{name}' is not allowed")


def _is_text_constant(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and isinstance(node.value, str)


def _spelling(node: nodes.Node) -> str:
    parts: list[str] = []
    while isinstance(node, nodes.Getattr):
        parts.append(node.attr)
        node = node.node
    if isinstance(node, nodes.Name):
        dotted = ".".join([node.name, *reversed(parts)])
        return f"'{dotted}'"
    return "a method" if parts else "an expression"


# --- the sandbox ------------------------------------------------------------------------------------


class _MissingValue(UndefinedError):
    """A strict undefined was used; carries where it came from so the message can name the path."""

    def __init__(self, message: str | None, *, owner: object, name: object) -> None:
        super().__init__(message)
        self.owner = owner
        self.name = name


class _Missing(StrictUndefined):
    """Undefined that fails on any use except ``default`` and ``is defined``; attribute chains pass
    through."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: object = missing,
        name: str | None = None,
        exc: type[JinjaError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, functools.partial(_MissingValue, owner=obj, name=name))  # type: ignore[arg-type]


class _TemplateFunction:
    """One of :data:`TEMPLATE_FUNCTIONS`, bound to this render's clock; the only thing a template may call."""

    __slots__ = ("_implementation", "name")

    def __init__(self, name: str, implementation: Callable[..., JsonValue]) -> None:
        self.name = name
        self._implementation = implementation

    def __call__(self, *args: object) -> JsonValue:
        return self._implementation(*args)


class _LoopBudget:
    """How many more loop iterations this render may run."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def iterate(self, items: Iterable[object]) -> Iterator[object]:
        for item in items:
            self.remaining -= 1
            if self.remaining < 0:
                raise TemplateError(f"loops ran more than {MAX_LOOP_ITERATIONS} times")
            yield item


class _Budget:
    """What one render may still handle (:data:`MAX_RENDER_ITEMS`) and write (:data:`MAX_RENDER_BYTES`).

    Charged before a value is built, so going over refuses the template before the value exists."""

    __slots__ = ("bytes", "items")

    def __init__(self) -> None:
        self.items = MAX_RENDER_ITEMS
        self.bytes = MAX_RENDER_BYTES

    def spend(self, items: int = 0, size: int = 0) -> None:
        self.items -= items
        self.bytes -= size
        if self.items < 0:
            raise TemplateError(
                f"rendering would handle more than {MAX_RENDER_ITEMS:,} values in all "
                "(every item of every list and object counts)"
            )
        if self.bytes < 0:
            raise TemplateError(
                f"rendering would write more than {MAX_RENDER_BYTES:,} bytes (1 MiB) of JSON and text in all"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("millrace_template_budget", default=None)


@contextmanager
def _rendering() -> Iterator[None]:
    """One budget for everything rendered inside: the outermost call opens it, inner ones share it."""
    if _BUDGET.get() is not None:
        yield
        return
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _budget() -> _Budget:
    # Outside a render (Jinja folding a constant while compiling) a charge has a budget of its own.
    return _BUDGET.get() or _Budget()


class _Sandbox(ImmutableSandboxedEnvironment):
    """Only JSON data, the filters and the functions: no Python attributes, methods or globals."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=_Missing, keep_trailing_newline=True, finalize=_as_text)
        self.globals.clear()
        self.filters = {
            **_FILTERS,
            _LOOP_BUDGET_FILTER: _within_loop_budget,
            _AS_TEXT_FILTER: _as_text,
            _SLICE_FILTER: _sliced,
        }
        self.tests = dict(_TESTS)

    def getattr(self, obj: object, attribute: str) -> object:
        if isinstance(obj, Undefined):
            return obj
        _refuse_private(attribute)
        if isinstance(obj, LoopContext) and attribute in _LOOP_FIELDS:
            return getattr(obj, attribute)
        return self._lookup(obj, attribute)

    def getitem(self, obj: object, argument: object) -> object:
        if isinstance(obj, Undefined):
            return obj
        if isinstance(argument, str):
            _refuse_private(argument)
        return self._lookup(obj, argument)

    def _lookup(self, obj: object, key: object) -> object:
        if isinstance(obj, Mapping):
            if isinstance(key, str) and key in obj:
                return obj[key]
        elif isinstance(obj, (list, tuple, str)):
            if isinstance(key, slice) and all(
                part is None or (isinstance(part, int) and not isinstance(part, bool))
                for part in (key.start, key.stop, key.step)
            ):
                return obj[key]
            if isinstance(key, int) and not isinstance(key, bool) and -len(obj) <= key < len(obj):
                return obj[key]
        return self.undefined(obj=obj, name=str(key))

    def call(self, context: Context, obj: object, /, *args: object, **kwargs: object) -> object:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if not isinstance(obj, _TemplateFunction) or kwargs:
            raise TemplateError(f"calling {_describe(obj)} is not allowed")
        return obj(*args)

    def call_binop(self, context: Context, operator_: str, left: object, right: object) -> object:
        for operand in (left, right):
            if isinstance(operand, Undefined):
                operand._fail_with_undefined_error()
        if operator_ == "%":
            if not (_is_number(left) and _is_number(right)):
                raise TemplateError("'%' only takes numbers; string formatting is not allowed")
            return operator.mod(left, right)
        if operator_ == "**":
            _check_power(left, right)
            return operator.pow(left, right)
        if operator_ == "*":
            _check_multiplication(left, right)
            return operator.mul(left, right)
        _check_concatenation(left, right)
        return operator.add(left, right)


@functools.cache
def _sandbox() -> _Sandbox:
    return _Sandbox()


def _check_power(base: object, exponent: object) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0):
        return
    if abs(base).bit_length() * exponent > MAX_POWER_BITS:
        raise TemplateError(f"'**' would produce a number larger than 2**{MAX_POWER_BITS}")


def _check_multiplication(left: object, right: object) -> None:
    """``*`` builds at most MAX_SEQUENCE_LENGTH characters, or items counting those of the lists and
    objects inside (``[[0] * 300] * 300`` is 90,300), and numbers of at most MAX_POWER_BITS bits."""
    if isinstance(left, int) and isinstance(right, int):
        if abs(left).bit_length() + abs(right).bit_length() > MAX_POWER_BITS:
            raise TemplateError(f"'*' would produce a number larger than 2**{MAX_POWER_BITS}")
        return
    for sequence, count in ((left, right), (right, left)):
        if not (isinstance(sequence, (str, list, tuple)) and isinstance(count, int)) or count <= 0:
            continue
        if isinstance(sequence, str):
            if len(sequence) * count > MAX_SEQUENCE_LENGTH:
                raise TemplateError(f"'*' would build more than {MAX_SEQUENCE_LENGTH} items")
            _budget().spend(size=_utf8_size(sequence) * count)
            return
        built = _nested_items(sequence, MAX_SEQUENCE_LENGTH // count) * count
        if built > MAX_SEQUENCE_LENGTH:
            raise TemplateError(
                f"'*' would build more than {MAX_SEQUENCE_LENGTH} items "
                "(the items of the lists and objects inside count too)"
            )
        _budget().spend(items=built)
        return


def _check_concatenation(left: object, right: object) -> None:
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_SEQUENCE_LENGTH:
            raise TemplateError(f"'+' would build more than {MAX_SEQUENCE_LENGTH} items")
        _budget().spend(size=_utf8_size(left) + _utf8_size(right))
    elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        built = _nested_items(left, MAX_SEQUENCE_LENGTH)
        built += _nested_items(right, MAX_SEQUENCE_LENGTH - built)
        if built > MAX_SEQUENCE_LENGTH:
            raise TemplateError(
                f"'+' would build more than {MAX_SEQUENCE_LENGTH} items "
                "(the items of the lists and objects inside count too)"
            )
        _budget().spend(items=built)


def _nested_items(value: list | tuple | Mapping, limit: int) -> int:
    """The items of ``value`` and of every list and object inside it (shared ones as often as they
    occur), counted without recursion and only until the count passes ``limit``."""
    count = 0
    pending: list[object] = [value]
    while pending:
        container = pending.pop()
        members = container.values() if isinstance(container, Mapping) else container  # type: ignore[union-attr]
        count += len(members)  # type: ignore[arg-type]
        if count > limit:
            return count
        pending.extend(member for member in members if isinstance(member, (list, tuple, Mapping)))  # type: ignore[union-attr]
    return count


def _sliced(value: object, start: object, stop: object, step: object) -> object:
    value = _defined(value)
    if not isinstance(value, (list, tuple, str)):
        raise TemplateError(f"only lists and text can be sliced, not {_describe(value)}")
    bounds = [_defined(bound) for bound in (start, stop, step)]
    if not all(bound is None or (isinstance(bound, int) and not isinstance(bound, bool)) for bound in bounds):
        raise TemplateError("slice bounds must be whole numbers")
    part = value[slice(*bounds)]
    if isinstance(part, str):
        _budget().spend(size=_utf8_size(part))
    else:
        _budget().spend(items=len(part))
    return part


@pass_context
def _within_loop_budget(context: Context, items: object) -> Iterator[object]:
    items = _defined(items)
    if not isinstance(items, (list, tuple, str, dict)):
        raise TemplateError(f"cannot loop over {_describe(items)}")
    budget = context.get(_LOOP_BUDGET)
    if not isinstance(budget, _LoopBudget):
        raise TemplateError("loops need a render context")
    return budget.iterate(items)


# --- values -----------------------------------------------------------------------------------------


def _defined(value: object) -> object:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    return value


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, (int, float)):
        return f"number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"text '{shown}'"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} items"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, _TemplateFunction):
        return f"the function {value.name}()"
    if isinstance(value, Undefined):
        return "an undefined value"
    return "a value that is not data"


def _to_json(value: object) -> JsonValue:
    """``value`` as JSON data, walked without recursion. Each list and object is charged to the render's
    budget (its items, and its brackets, commas and keys as bytes) before its copy is made, and its
    scalars their bytes, so a value that would be too large as JSON is refused before it is written
    out, however many references it shares inside."""
    budget = _budget()
    value = _defined(value)
    if value is None or isinstance(value, (str, int, float)):
        budget.spend(items=1, size=_scalar_size(value))
        return value  # type: ignore[return-value]
    items_left, bytes_left = budget.items - 1, budget.bytes
    root: list[JsonValue] = [None]
    # (a value, the copy its JSON goes into, under which index or key); scalars are done in place
    pending: list[tuple[object, Any, Any]] = [(value, root, 0)]
    while pending:
        source, parent, key = pending.pop()
        if isinstance(source, (list, tuple)):
            items_left -= len(source)
            bytes_left -= len(source) + 1
            if items_left < 0 or bytes_left < 0:
                _overspent(budget, items_left, bytes_left)
            copy: Any = list(source)
            members: Iterable[tuple[Any, object]] = enumerate(copy)
        elif isinstance(source, Mapping):
            items_left -= len(source)
            bytes_left -= len(source) + 1
            if items_left < 0 or bytes_left < 0:
                _overspent(budget, items_left, bytes_left)
            for name in source:
                if type(name) is not str:
                    raise TemplateError(f"object keys must be text, not {_describe(name)}")
                bytes_left -= (len(name) if name.isascii() else _utf8_size(name)) + 3
            copy = dict(source)
            members = copy.items()
        else:  # pushed below: not a plain scalar (an undefined value, a str or int subclass, ...)
            source = _defined(source)
            if not (source is None or isinstance(source, (str, int, float))):
                raise TemplateError(f"{_describe(source)} cannot be used as a value")
            bytes_left -= _scalar_size(source)
            parent[key] = source
            continue
        parent[key] = copy
        nested: list[tuple[object, Any, Any]] = []
        for at, member in members:
            kind = type(member)
            if kind is str:
                bytes_left -= (len(member) if member.isascii() else _utf8_size(member)) + 2  # type: ignore[attr-defined,arg-type]
            elif kind is int:
                bytes_left -= member.bit_length() * 77 // 256 + 2  # type: ignore[attr-defined]
            elif member is None or kind is bool:
                bytes_left -= 5
            elif kind is float:
                bytes_left -= _scalar_size(member)  # type: ignore[arg-type]
            else:
                nested.append((member, copy, at))
        if bytes_left < 0:
            _overspent(budget, items_left, bytes_left)
        pending.extend(reversed(nested))  # depth first, in the order the value reads
    budget.items, budget.bytes = items_left, bytes_left
    return root[0]


def _overspent(budget: _Budget, items_left: int, bytes_left: int) -> NoReturn:
    budget.items, budget.bytes = items_left, bytes_left
    budget.spend()
    raise AssertionError("spend() raises when the budget is overspent")


def _scalar_size(value: str | float | None) -> int:
    """About the bytes of a scalar as JSON (a string's escapes aside); a non-finite number is refused."""
    if isinstance(value, str):
        return _utf8_size(value) + 2
    if value is None or isinstance(value, bool):
        return 5
    if isinstance(value, int):
        return abs(value).bit_length() * 77 // 256 + 2  # its decimal digits, from its bits, and a sign
    if not math.isfinite(value):
        raise TemplateError("the result is not a finite number")
    return 24


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _as_text(value: object) -> str:
    """How a value reads inside text: null is empty, booleans are true/false, lists and objects are JSON.
    What is written is charged to the render's budget (lists and objects through :func:`_to_json`)."""
    value = _defined(value)
    if isinstance(value, str):
        _budget().spend(size=_utf8_size(value))
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(_to_json(value))
    if isinstance(value, (list, tuple, Mapping)):
        return json.dumps(_to_json(value), ensure_ascii=False, separators=(",", ":"))
    raise TemplateError(f"{_describe(value)} cannot be written as text")


def _describe_missing(error: _MissingValue, context: Mapping[str, JsonValue]) -> str:
    if error.owner is missing:
        return f"'{error.name}' is undefined" if error.name is not None else str(error.message)
    if isinstance(error.owner, (Mapping, list, tuple)):
        path = _find_path(context, error.owner)
        where = ".".join((*path, str(error.name))) if path is not None else str(error.name)
        return f"'{where}' is undefined"
    return f"{_describe(error.owner)} has no '{error.name}'"


def _find_path(context: Mapping[str, JsonValue], target: object) -> tuple[str, ...] | None:
    """Where in the context an object sits (by identity), to name it in an error message."""
    pending: list[tuple[tuple[str, ...], object]] = [((key,), value) for key, value in context.items()]
    while pending:
        path, value = pending.pop()
        if value is target:
            return path
        if isinstance(value, Mapping):
            pending.extend(((*path, str(key)), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(((*path, str(index)), item) for index, item in enumerate(value))
    return None


def _iso(moment: datetime) -> str:
    text = moment.isoformat()
    if moment.utcoffset() == timedelta(0) and text.endswith("+00:00"):
        return text[: -len("+00:00")] + "Z"
    return text


def _parse_instant(filter_name: str, value: object) -> datetime | date:
    value = _defined(value)
    if _is_number(value):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and _ISO_INSTANT.fullmatch(value.strip()):
        text = value.strip()
        if len(text) == 10:
            return date.fromisoformat(text)
        return datetime.fromisoformat(text)
    raise TemplateError(f"{filter_name} expects an ISO-8601 date or a Unix timestamp, got {_describe(value)}")


def _format_argument(filter_name: str, pattern: object) -> str | None:
    pattern = _defined(pattern)
    if pattern is None:
        return None
    if not isinstance(pattern, str) or len(pattern) > 200:
        raise TemplateError(f"{filter_name} takes a strftime format text of at most 200 characters")
    return pattern


# --- filters ----------------------------------------------------------------------------------------


_Items = TypeVar("_Items", Sequence[object], Mapping[str, object])


def _text(filter_name: str, value: object) -> str:
    value = _defined(value)
    if not isinstance(value, str):
        raise TemplateError(f"{filter_name} expects text, got {_describe(value)}")
    return value


def _sequence(filter_name: str, value: object) -> Sequence[object]:
    value = _defined(value)
    if not isinstance(value, (list, tuple, str)):
        raise TemplateError(f"{filter_name} expects a list, got {_describe(value)}")
    return value


def _mapping(filter_name: str, value: object) -> Mapping[str, object]:
    value = _defined(value)
    if not isinstance(value, Mapping):
        raise TemplateError(f"{filter_name} expects an object, got {_describe(value)}")
    return value


def _length(value: object) -> int:
    value = _defined(value)
    if not isinstance(value, (str, list, tuple, Mapping)):
        raise TemplateError(f"length expects text, a list or an object, got {_describe(value)}")
    return len(value)


def _first(value: object) -> object:
    items = _sequence("first", value)
    return items[0] if items else None


def _last(value: object) -> object:
    items = _sequence("last", value)
    return items[-1] if items else None


def _numbers(filter_name: str, value: object) -> list[int | float]:
    numbers: list[int | float] = []
    for item in _read(_sequence(filter_name, value)):
        number = _defined(item)
        if not _is_number(number):
            raise TemplateError(f"{filter_name} expects a list of numbers, found {_describe(number)}")
        numbers.append(number)
    return numbers


def _sum(value: object) -> int | float:
    return sum(_numbers("sum", value))


def _orderable(filter_name: str, value: object) -> list[int | float] | list[str]:
    items = [_defined(item) for item in _read(_sequence(filter_name, value))]
    numbers = [item for item in items if _is_number(item)]
    if len(numbers) == len(items):
        return numbers
    texts = [item for item in items if isinstance(item, str)]
    if len(texts) == len(items):
        return texts
    raise TemplateError(f"{filter_name} expects a list of numbers or a list of texts")


def _min(value: object) -> int | float | str | None:
    items = _orderable("min", value)
    return min(items) if items else None


def _max(value: object) -> int | float | str | None:
    items = _orderable("max", value)
    return max(items) if items else None


def _join(value: object, separator: object = "") -> str:
    items = _read(_sequence("join", value))
    between = _text("join's separator", separator)
    _budget().spend(size=_utf8_size(between) * max(len(items) - 1, 0))
    return between.join([_as_text(item) for item in items])  # each piece is charged as it is written


def _json(value: object, indent: object = None) -> str:
    indent = _defined(indent)
    if indent is not None and not (
        isinstance(indent, int) and not isinstance(indent, bool) and 0 <= indent <= 8
    ):
        raise TemplateError("json takes an indent between 0 and 8")
    separators = (",", ":") if indent is None else None
    return json.dumps(_to_json(value), ensure_ascii=False, indent=indent, separators=separators)


def _keys(value: object) -> list[str]:
    return list(_read(_mapping("keys", value)))


def _values(value: object) -> list[object]:
    return list(_read(_mapping("values", value)).values())


def _read(items: _Items) -> _Items:
    """A list or object a filter walks or copies: each of its items is charged to the render's budget."""
    _budget().spend(items=len(items))
    return items


def _written(text: str) -> str:
    """Text a filter made: charged to the render's budget (repeated, it would cost memory unbounded)."""
    _budget().spend(size=_utf8_size(text))
    return text


def _default(value: object, fallback: object = "") -> object:
    if isinstance(value, Undefined) or value is None:
        return fallback
    return value


def _currency(value: object, code: object = "USD") -> str:
    amount = _defined(value)
    if not _is_number(amount):
        raise TemplateError(f"currency expects a number, got {_describe(amount)}")
    code = _defined(code)
    if not (isinstance(code, str) and re.fullmatch(r"[A-Za-z]{3}", code)):
        raise TemplateError(f"currency takes a three-letter currency code, got {_describe(code)}")
    code = code.upper()
    places = Decimal(1) if code in _ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    rounded = Decimal(repr(amount)).quantize(places, rounding=ROUND_HALF_UP)
    sign = "-" if rounded < 0 else ""
    digits = f"{abs(rounded):,}"
    if code in _CURRENCY_SYMBOLS:
        return f"{sign}{_CURRENCY_SYMBOLS[code]}{digits}"
    return f"{sign}{digits} {code}"


def _date(value: object, pattern: object = None) -> str:
    instant = _parse_instant("date", value)
    chosen = _format_argument("date", pattern)
    if chosen is not None:
        return instant.strftime(chosen)
    return (instant.date() if isinstance(instant, datetime) else instant).isoformat()


def _datetime(value: object, pattern: object = None) -> str:
    instant = _parse_instant("datetime", value)
    if not isinstance(instant, datetime):
        instant = datetime(instant.year, instant.month, instant.day)
    chosen = _format_argument("datetime", pattern)
    return instant.strftime(chosen) if chosen is not None else _iso(instant)


_FILTERS: Mapping[str, Callable[..., object]] = {
    "upper": lambda value: _written(_text("upper", value).upper()),
    "lower": lambda value: _written(_text("lower", value).lower()),
    "title": lambda value: _written(_text("title", value).title()),
    "trim": lambda value: _written(_text("trim", value).strip()),
    "length": _length,
    "first": _first,
    "last": _last,
    "sum": _sum,
    "min": _min,
    "max": _max,
    "join": _join,
    "json": _json,
    "keys": _keys,
    "values": _values,
    "default": _default,
    "currency": _currency,
    "date": _date,
    "datetime": _datetime,
}
_TESTS: Mapping[str, Callable[[object], bool]] = {
    "defined": lambda value: not isinstance(value, Undefined),
    "undefined": lambda value: isinstance(value, Undefined),
    "none": lambda value: value is None,
    "boolean": lambda value: isinstance(value, bool),
    "number": _is_number,
    "string": lambda value: isinstance(value, str),
    "mapping": lambda value: isinstance(value, Mapping),
    "sequence": lambda value: isinstance(value, (list, tuple)),
    "even": lambda value: isinstance(value, int) and not isinstance(value, bool) and value % 2 == 0,
    "odd": lambda value: isinstance(value, int) and not isinstance(value, bool) and value % 2 == 1,
}


# --- functions --------------------------------------------------------------------------------------


def _functions(now: datetime, new_id: Callable[[], UUID]) -> dict[str, _TemplateFunction]:
    def days(function_name: str, count: object) -> timedelta:
        count = _defined(count)
        if not _is_number(count):
            raise TemplateError(f"{function_name}() expects a number of days, got {_describe(count)}")
        return timedelta(days=count)

    def timestamp() -> int:
        aware = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        return int(aware.timestamp())

    return {
        "now": _TemplateFunction("now", lambda: _iso(now)),
        "today": _TemplateFunction("today", lambda: now.date().isoformat()),
        "timestamp": _TemplateFunction("timestamp", timestamp),
        "uuid": _TemplateFunction("uuid", lambda: str(new_id())),
        "days_ago": _TemplateFunction("days_ago", lambda count: _iso(now - days("days_ago", count))),
        "days_from_now": _TemplateFunction(
            "days_from_now", lambda count: _iso(now + days("days_from_now", count))
        ),
    }
