"""The check done when a workflow is saved: syntax aside, a parsed template may only use the filters,
functions, tests and tags the sandbox offers, and no private names; :class:`_Inspector` walks it and
collects the variable paths it reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import nodes

from millrace_common.language.templating.errors import TemplateError
from millrace_common.language.templating.limits import MAX_NESTING


@dataclass(frozen=True)
class TemplateCheck:
    """What a template reads: each static path from a root name, e.g. ``("nodes", "classify", "output")``."""

    references: frozenset[tuple[str, ...]]


_FUNCTION_ARITY: Mapping[str, tuple[int, int]] = {
    "now": (0, 0),
    "today": (0, 0),
    "timestamp": (0, 0),
    "uuid": (0, 0),
    "days_ago": (1, 1),
    "days_from_now": (1, 1),
    # (date, time zone): the date defaults to now (or is null for now), the zone to UTC.
    "start_of_day": (0, 2),
    "end_of_day": (0, 2),
    "start_of_week": (0, 2),
    "start_of_month": (0, 2),
    "days_until": (1, 2),
    "days_since": (1, 2),
    "is_overdue": (1, 2),
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
_PARAMETERS = {0: "", 1: "n", 2: "date, zone"}
_CALLABLE = ", ".join(f"{name}({_PARAMETERS[high]})" for name, (_, high) in _FUNCTION_ARITY.items())


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
        if given < low:
            plural = "s" if low > 1 else ""
            raise TemplateError(f"{label} takes at least {low} argument{plural} ({given} given)")
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
