"""The reference checks of a workflow graph: what a node's templates and conditions read (``trigger``,
``workflow``, ``vars``, ``nodes``, and in a for_each body ``index`` and each enclosing loop's
``item_variable``, ``item`` by default) must exist where the node runs; ``vars.<name>``
must be set by a set node before it and ``workflow.vars.<name>`` declared in ``settings.variables``
(those two only for a submitted definition). A part of :mod:`workflow_graph`'s check, kept apart for
its size."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING

from millrace_common.language.conditions import Comparison, ConditionError, evaluate
from millrace_common.language.templating import TemplateError, check_template
from millrace_common.language.workflow_configs import NodeConfig, Path, comparisons

if TYPE_CHECKING:
    from millrace_common.language.workflow_graph import NodeView

TEMPLATE_ROOTS = frozenset({"trigger", "workflow", "vars", "nodes"})
WORKFLOW_MEMBERS = frozenset({"id", "version", "vars"})
SET_NODE_TYPE = "set"
BODY_ROOTS = frozenset({"item", "index"})
"""The names only a for_each body defines by default (``item`` is a loop's default ``item_variable``)."""


class ReferenceChecks:
    """The reference checks of ``workflow_graph._GraphCheck`` (which provides what is declared here)."""

    nodes: Sequence[NodeView]
    position: dict[str, int]
    shadowed: set[int]
    scope: list[int | None]
    workflow_variables: frozenset[str] | None
    check_variables: bool
    setters: dict[str, int] | None
    reader_is_trigger: bool

    def _references(self) -> None:
        ancestors = self._ancestors()
        self.setters = self._variable_setters() if self.check_variables else None
        for position, node in enumerate(self.nodes):
            if node.config is not None and position not in self.shadowed:
                self.reader_is_trigger = node.type == "trigger"
                for path, message in self._reference_problems(position, node.config, ancestors[position]):
                    self._report(self._node_pointer(position, "data", *path), message)

    def _variable_setters(self) -> dict[str, int] | None:
        """Per variable name, a bitset of the set nodes that set it, each with the for_each nodes
        around it (a variable set inside a loop's body is set once the loop ran); None when a set
        node's config is not known, so ``vars`` references cannot be checked."""
        setters: dict[str, int] = {}
        for position, node in enumerate(self.nodes):
            if node.type not in (SET_NODE_TYPE, None) or position in self.shadowed:
                continue
            variables = getattr(node.config, "variables", None)
            if node.type is None or not isinstance(variables, dict):
                return None
            bits = 1 << position
            for enclosing in self._enclosing(position):
                bits |= 1 << enclosing
            for name in variables:
                setters[name] = setters.get(name, 0) | bits
        return setters

    def _body_names(self, position: int) -> frozenset[str]:
        """What a node's body adds to its templates' context: ``index`` and the item name of every
        for_each around it (none at the top level)."""
        names = {
            getattr(self.nodes[loop].config, "item_variable", "item") for loop in self._enclosing(position)
        }
        return frozenset(names | {"index"}) if names else frozenset()

    def _reference_problems(
        self, position: int, config: NodeConfig, ancestors: int
    ) -> Iterator[tuple[Path, str]]:
        in_body = self._body_names(position)
        for path, source in config.rendered_strings():
            if "{" not in source:
                continue
            checked = _checked_template(source)
            if isinstance(checked, str):
                yield path, checked
                continue
            for reference in sorted(checked):
                message = self._reference_problem(reference, in_body, ancestors, "template")
                if message is not None:
                    yield path, message
        for path, fields in config.condition_references():
            for reference in sorted(fields):
                message = self._reference_problem(reference, in_body, ancestors, "condition")
                if message is not None:
                    yield path, message
        for path, tree, _ in config.condition_trees():
            for leaf_path, leaf in comparisons(path, tree):
                message = _comparison_problem(leaf)
                if message is not None:
                    yield (*leaf_path, "value"), message

    def _reference_problem(
        self, reference: tuple[str, ...], in_body: frozenset[str], ancestors: int, what: str
    ) -> str | None:
        if not reference:
            return None
        root = reference[0]
        if root in BODY_ROOTS and not in_body:
            return f"{what} refers to {root!r}, which is only defined inside a for_each body"
        if root not in TEMPLATE_ROOTS | in_body:
            allowed = ", ".join(sorted(TEMPLATE_ROOTS | in_body))
            return f"{what} refers to {root!r}, which is not defined; it can use {allowed}"
        if root == "nodes" and len(reference) > 1:
            target = self.position.get(reference[1])
            if target is None or not (ancestors >> target) & 1:
                return f"{what} refers to node {reference[1]!r}, which cannot have run before this node"
        if root == "vars" and len(reference) > 1 and not self._may_be_set(reference[1], ancestors):
            return (
                f"{what} refers to variable {reference[1]!r}, which no set node before this node sets "
                f"(a workflow constant is workflow.vars.{reference[1]})"
            )
        if root == "workflow" and len(reference) > 1 and self.check_variables:
            return self._workflow_reference_problem(reference, what)
        return None

    def _may_be_set(self, name: str, ancestors: int) -> bool:
        return self.setters is None or bool(self.setters.get(name, 0) & ancestors)

    def _workflow_reference_problem(self, reference: tuple[str, ...], what: str) -> str | None:
        member = reference[1]
        if member not in WORKFLOW_MEMBERS:
            return (
                f"{what} refers to workflow.{member}, which is not defined; workflow has id, version and vars"
            )
        if member != "vars":
            return None
        if self.reader_is_trigger:
            return f"{what} refers to workflow.vars, which the trigger's conditions cannot read"
        declared = self.workflow_variables
        if len(reference) > 2 and declared is not None and reference[2] not in declared:
            known = ", ".join(sorted(declared)) or "none"
            return (
                f"{what} refers to workflow variable {reference[2]!r}, which settings.variables does not "
                f"declare (declared: {known})"
            )
        return None


_SOME_INSTANT = datetime(2000, 1, 1, tzinfo=UTC)


def _comparison_problem(comparison: Comparison) -> str | None:
    """Why a comparison can never be evaluated (a bad pattern, a list operator without a list...),
    found by evaluating it against no data; values that are templates are only known at run time."""
    values = (comparison.value, comparison.value_to)
    if any(isinstance(value, str) and "{" in value for value in values):
        return None
    try:
        evaluate(comparison, {}, now=_SOME_INSTANT)
    except ConditionError as error:
        return str(error)
    return None


@lru_cache(maxsize=4096)
def _checked_template(source: str) -> frozenset[tuple[str, ...]] | str:
    """The references of a template, or why it does not compile (memoised: definitions repeat strings)."""
    try:
        return frozenset(check_template(source).references)
    except TemplateError as error:
        return f"template error: {error}"
