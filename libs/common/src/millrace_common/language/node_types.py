"""The node type registry: what a node type is (:class:`NodeType`), and the registry that holds the
built-in types and those installed packages add through the ``millrace.nodes`` entry point group.

A node type declares its name, its palette category, its config model (a :class:`NodeConfig`), its
runner class (one of :data:`RUNNER_CLASSES`, each a runner topic; a type without one is evaluated by
the orchestrator itself, which only built-in types can be), the fields of its output, its named source
handles, and for a plugin the import path of its handler factory (``"module:attribute"``).

The handler is named by a string, never imported here: the gateway and the orchestrator validate and
schedule a plugin's nodes from its declaration alone, and only the node runner imports the handler
(with whatever I/O library it needs). One entry point declares both halves, so a type cannot be
registered with a handler of another type's name, or without one.

Nothing is loaded at import: :func:`load_node_types` reads the entry points when it is called, and
``workflow_nodes.node_types()`` calls it once per process, at the first use. ``docs/node-reference.md``
("Node types as plugins") and ``CONTRIBUTING.md`` ("Add a node type") describe how a type is added.
"""

from __future__ import annotations

import importlib.metadata
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

from pydantic import create_model

from millrace_common.contracts.topics import (
    NODES_READY_AI,
    NODES_READY_CODE,
    NODES_READY_HTTP,
    NODES_READY_OTHER,
    NODES_READY_RECORD,
    Topic,
)
from millrace_common.language.workflow_configs import NodeConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "RUNNER_CLASSES",
    "NodeType",
    "NodeTypeError",
    "NodeTypeRegistry",
    "load_node_types",
]

ENTRY_POINT_GROUP = "millrace.nodes"
"""The entry point group a package adds node types through."""

RUNNER_CLASSES: Mapping[str, Topic] = {
    "ai": NODES_READY_AI,
    "http": NODES_READY_HTTP,
    "record": NODES_READY_RECORD,
    "other": NODES_READY_OTHER,
    "code": NODES_READY_CODE,
}
"""The runner classes and the topic each is sent on; the node runner consumes each with its own
concurrency. A new runner class is a change here (and to the topics and the runner), never a plugin's."""

BUILT_IN = "built in"
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_HANDLER_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$")


class NodeTypeError(Exception):
    """A node type that cannot be registered: a malformed declaration, or a name taken twice."""


@dataclass(frozen=True)
class NodeType:
    """One node type of the workflow language."""

    type: str
    """The ``type`` of a node in a definition: lower case letters, digits and ``_``, at most 64."""
    config: type[NodeConfig]
    """The model of the node's ``data``; the builder's form is its JSON Schema."""
    category: str
    """The builder's palette group: a built-in one (``External``) or a new one."""
    runner_class: str | None
    """The runner class (a key of :data:`RUNNER_CLASSES`); None for types the orchestrator evaluates."""
    outputs: tuple[str, ...] = ()
    """The top-level fields of the node's output when it succeeds."""
    handles: frozenset[str] = frozenset()
    """Named source handles; only types the orchestrator evaluates choose among handles."""
    handle_required: bool = False
    """Whether every edge leaving a node of this type must name one of its handles."""
    handler: str | None = None
    """``"module:attribute"``: the factory the node runner calls to get the type's handler. Required
    for a plugin; the built-in types' handlers are wired by the runner's composition root."""
    description: str = ""

    @property
    def runner_topic(self) -> Topic | None:
        return None if self.runner_class is None else RUNNER_CLASSES[self.runner_class]


@dataclass(frozen=True)
class NodeTypeRegistry:
    """The node types this process knows, in palette order (built-ins first), with where each came
    from (``built in``, or the entry point and distribution of its plugin)."""

    types: Mapping[str, NodeType]
    sources: Mapping[str, str]
    _models: dict[str, type[Any]] = field(default_factory=dict, repr=False, compare=False)
    _model_base: type[Any] | None = field(default=None, repr=False, compare=False)

    def __contains__(self, node_type: object) -> bool:
        return node_type in self.types

    def __iter__(self) -> Iterator[NodeType]:
        return iter(self.types.values())

    def __len__(self) -> int:
        return len(self.types)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.types)

    def get(self, node_type: str) -> NodeType | None:
        return self.types.get(node_type)

    def plugins(self) -> tuple[NodeType, ...]:
        """The types a plugin added."""
        return tuple(t for t in self if self.sources[t.type] != BUILT_IN)

    def categories(self) -> dict[str, tuple[str, ...]]:
        """The palette: each category with its types, in the order they first appear."""
        grouped: dict[str, list[str]] = {}
        for node_type in self:
            grouped.setdefault(node_type.category, []).append(node_type.type)
        return {category: tuple(types) for category, types in grouped.items()}

    def runner_topics(self) -> Mapping[str, Topic]:
        """The runner topic of every type a runner executes."""
        return self._runner_topics

    @cached_property
    def _runner_topics(self) -> Mapping[str, Topic]:
        return MappingProxyType({t.type: topic for t in self if (topic := t.runner_topic) is not None})

    def node_model(self, node_type: str) -> type[Any] | None:
        """The model of a whole node of this type (``id``, ``type``, ``position``, ``parentId``, ``data``),
        built the first time it is asked for; None for a type this process does not know."""
        model = self._models.get(node_type)
        if model is None and node_type in self.types and self._model_base is not None:
            model = self._models[node_type] = _generated_node_model(self._model_base, self.types[node_type])
        return model

    def unknown(self, node_type: str) -> str:
        """What to say about a node type this process does not know."""
        return (
            f"unknown node type {node_type!r}; the types are {', '.join(self.names)} (a type a plugin adds "
            f"needs its package installed in every service that validates or runs workflows)"
        )


def _generated_node_model(base: type[Any], node_type: NodeType) -> type[Any]:
    camel = "".join(part.capitalize() for part in node_type.type.split("_"))
    return create_model(  # type: ignore[call-overload, no-any-return]
        f"{camel}Node",
        __base__=base,
        __module__=node_type.config.__module__,
        type=(Literal[node_type.type], ...),  # type: ignore[valid-type]
        data=(node_type.config, ...),
    )


def _installed_entry_points() -> Iterable[importlib.metadata.EntryPoint]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def load_node_types(
    built_in: Iterable[NodeType],
    *,
    node_models: Mapping[str, type[Any]] | None = None,
    model_base: type[Any] | None = None,
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
) -> NodeTypeRegistry:
    """The built-in types, then each installed plugin's (entry points in name order).

    An entry point's object is a :class:`NodeType`, a sequence of them, or a callable returning
    either. ``node_models`` are the hand-written node models of built-in types; the others get one
    built from ``model_base`` when first needed. Raises :class:`NodeTypeError` for a declaration that
    breaks a rule or a type name registered twice, naming the plugin."""
    types: dict[str, NodeType] = {}
    sources: dict[str, str] = {}
    for node_type in built_in:
        _register(types, sources, node_type, BUILT_IN, plugin=False)
    found = _installed_entry_points() if entry_points is None else entry_points
    for entry_point in sorted(found, key=lambda e: (e.name, e.value)):
        source = _describe(entry_point)
        for node_type in _declared(entry_point, source):
            _register(types, sources, node_type, source, plugin=True)
    return NodeTypeRegistry(types, sources, dict(node_models or {}), model_base)


def _describe(entry_point: importlib.metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    package = f" of {dist.name}" if dist is not None else ""
    return f"plugin {entry_point.name} = {entry_point.value}{package}"


def _declared(entry_point: importlib.metadata.EntryPoint, source: str) -> tuple[NodeType, ...]:
    try:
        declared = entry_point.load()
    except Exception as error:
        raise NodeTypeError(f"{source}: cannot be loaded ({type(error).__name__}: {error})") from error
    if callable(declared) and not isinstance(declared, NodeType | type):
        declared = declared()
    items = (declared,) if isinstance(declared, NodeType) else declared
    if not isinstance(items, Iterable) or isinstance(items, str | bytes | Mapping):
        raise NodeTypeError(f"{source}: declares {type(declared).__name__}, not a NodeType or a list of them")
    items = tuple(items)
    for item in items:
        if not isinstance(item, NodeType):
            raise NodeTypeError(f"{source}: declares {type(item).__name__}, not a NodeType")
    return items


def _register(
    types: dict[str, NodeType], sources: dict[str, str], node_type: NodeType, source: str, *, plugin: bool
) -> None:
    name = node_type.type
    if not isinstance(name, str) or not _TYPE_NAME.match(name):
        raise NodeTypeError(
            f"{source}: the node type name {name!r} is not 1-64 lower case letters, digits and _ "
            "starting with a letter"
        )
    if name in types:
        raise NodeTypeError(
            f"{source}: the node type {name!r} is already registered ({sources[name]}); "
            "every node type name is registered once"
        )
    if not (isinstance(node_type.config, type) and issubclass(node_type.config, NodeConfig)):
        raise NodeTypeError(f"{source}: the config of {name!r} is not a NodeConfig model")
    if not node_type.category or not isinstance(node_type.category, str):
        raise NodeTypeError(f"{source}: {name!r} has no category")
    if node_type.runner_class is not None and node_type.runner_class not in RUNNER_CLASSES:
        raise NodeTypeError(
            f"{source}: {name!r} names the runner class {node_type.runner_class!r}; the runner classes "
            f"are {', '.join(RUNNER_CLASSES)}"
        )
    if node_type.runner_class is not None and (node_type.handles or node_type.handle_required):
        raise NodeTypeError(
            f"{source}: {name!r} runs on a runner, and a runner's result takes no named handle"
        )
    if plugin:
        if node_type.runner_class is None:
            raise NodeTypeError(
                f"{source}: {name!r} has no runner class; a plugin's type runs on one of "
                f"{', '.join(RUNNER_CLASSES)} (only built-in types are evaluated by the orchestrator)"
            )
        if not isinstance(node_type.handler, str) or not _HANDLER_PATH.match(node_type.handler):
            raise NodeTypeError(
                f"{source}: {name!r} needs its handler factory as 'module:attribute', "
                f"not {node_type.handler!r}"
            )
    types[name] = node_type
    sources[name] = source
