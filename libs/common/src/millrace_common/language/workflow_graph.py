"""The checks a workflow graph must pass, each problem pointing (RFC 6901) into the submitted JSON.

The checks run on :class:`NodeView` and :class:`EdgeView`, which a fully typed definition and a
partly invalid one both provide, so a definition with a bad node config still gets its graph
checked. Everything here is linear in nodes plus edges: ancestors are bitsets folded once in
topological order of the strongly connected components. The reference checks are in
:mod:`workflow_references`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from millrace_common.language.workflow_configs import NodeConfig
from millrace_common.language.workflow_nodes import CASE_HANDLE_PREFIX, ERROR_HANDLE, node_types
from millrace_common.language.workflow_references import ReferenceChecks

MAX_FOR_EACH_NESTING = 3


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: where (a JSON pointer into what was submitted) and what."""

    pointer: str
    message: str


@dataclass(frozen=True)
class NodeView:
    """What the graph checks need of a node; ``type``, ``handles`` and ``config`` are None when the
    node's own validation failed and they are not known."""

    index: int
    id: str
    type: str | None
    parent_id: str | None
    handles: frozenset[str] | None
    config: NodeConfig | None


@dataclass(frozen=True)
class EdgeView:
    index: int
    id: str | None
    source: str | None
    target: str | None
    source_handle: str | None


def pointer(*parts: str | int) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def graph_problems(
    nodes: Sequence[NodeView],
    edges: Sequence[EdgeView],
    workflow_variables: frozenset[str] | None = None,
    *,
    check_variables: bool = False,
) -> list[Problem]:
    """Every problem of the graph: ids, edges, handles, bodies, cycles, reachability, references.

    ``check_variables`` adds the checks of ``vars.<name>`` and ``workflow...`` references, which a
    submitted definition must pass (``validate_definition``) while a stored one, saved before they
    existed, still loads. ``workflow_variables`` are the names ``settings.variables`` declares (None
    when the settings did not validate: ``workflow.vars.<name>`` is then not checked)."""
    return _GraphCheck(nodes, edges, workflow_variables, check_variables).problems()


class _GraphCheck(ReferenceChecks):
    def __init__(
        self,
        nodes: Sequence[NodeView],
        edges: Sequence[EdgeView],
        workflow_variables: frozenset[str] | None = None,
        check_variables: bool = False,
    ) -> None:
        self.nodes = nodes
        self.edges = edges
        self.workflow_variables = workflow_variables
        self.check_variables = check_variables
        self.setters: dict[str, int] | None = None
        self.reader_is_trigger = False
        self.found: list[Problem] = []
        self.position: dict[str, int] = {}
        self.shadowed: set[int] = set()
        for position, node in enumerate(nodes):
            if node.id in self.position:
                self.shadowed.add(position)
            else:
                self.position[node.id] = position
        # (edge, source position, target position) for edges whose ends both exist
        self.links: list[tuple[EdgeView, int, int]] = []
        self.scope: list[int | None] = [None] * len(nodes)

    def problems(self) -> list[Problem]:
        self._ids()
        self._edge_ends()
        self._triggers()
        self._bodies()
        self._boundaries_and_handles()
        self._cycles()
        self._reachability()
        self._references()
        return self.found

    def _report(self, where: str, message: str) -> None:
        self.found.append(Problem(where, message))

    def _node_pointer(self, position: int, *parts: str | int) -> str:
        return pointer("nodes", self.nodes[position].index, *parts)

    def _ids(self) -> None:
        for position in sorted(self.shadowed):
            node = self.nodes[position]
            first = self.nodes[self.position[node.id]]
            self._report(
                pointer("nodes", node.index, "id"),
                f"duplicate node id {node.id!r} (also /nodes/{first.index})",
            )
        seen: dict[str, int] = {}
        for edge in self.edges:
            if edge.id is None:
                continue
            if edge.id in seen:
                self._report(
                    pointer("edges", edge.index, "id"),
                    f"duplicate edge id {edge.id!r} (also /edges/{seen[edge.id]})",
                )
            else:
                seen[edge.id] = edge.index

    def _edge_ends(self) -> None:
        for edge in self.edges:
            ends: list[int] = []
            for field, node_id in (("source", edge.source), ("target", edge.target)):
                if node_id is None:
                    continue
                if node_id in self.position:
                    ends.append(self.position[node_id])
                else:
                    self._report(
                        pointer("edges", edge.index, field), f"edge refers to unknown node {node_id!r}"
                    )
            if len(ends) == 2:
                self.links.append((edge, ends[0], ends[1]))

    def _triggers(self) -> None:
        triggers = [
            p for p, node in enumerate(self.nodes) if node.type == "trigger" and p not in self.shadowed
        ]
        if not triggers:
            self._report("/nodes", "a workflow has exactly one trigger node, found 0")
        for position in triggers[1:]:
            self._report(
                self._node_pointer(position, "type"),
                f"a workflow has exactly one trigger node, found {len(triggers)}",
            )
        for edge, _, target in self.links:
            if self.nodes[target].type == "trigger":
                self._report(pointer("edges", edge.index, "target"), "a trigger cannot have incoming edges")

    def _bodies(self) -> None:
        """Resolve ``parentId`` into scopes: a node's scope is the for_each whose body it is in."""
        for position, node in enumerate(self.nodes):
            if node.parent_id is None:
                continue
            parent = self.position.get(node.parent_id)
            if parent is None:
                self._report(
                    self._node_pointer(position, "parentId"), f"parentId {node.parent_id!r} is not a node"
                )
            elif parent == position:
                self._report(self._node_pointer(position, "parentId"), "a node cannot be its own parent")
            elif (parent_type := self.nodes[parent].type) not in ("for_each", None):
                self._report(
                    self._node_pointer(position, "parentId"),
                    f"parentId {node.parent_id!r} names a {parent_type!r} node; only a for_each has a body",
                )
            elif node.type == "trigger":
                self._report(
                    self._node_pointer(position, "parentId"), "a trigger cannot be inside a for_each body"
                )
            else:
                self.scope[position] = parent
        self._break_parent_loops()
        for position, node in enumerate(self.nodes):
            if node.type != "for_each" or position in self.shadowed:
                continue
            nesting = 1 + sum(1 for _ in self._enclosing(position))
            if nesting > MAX_FOR_EACH_NESTING:
                self._report(
                    self._node_pointer(position, "parentId"),
                    f"for_each bodies nest {nesting} deep here; the limit is {MAX_FOR_EACH_NESTING}",
                )
        named_as_parent = {node.parent_id for node in self.nodes}
        for position, node in enumerate(self.nodes):
            if node.type == "for_each" and node.id not in named_as_parent and position not in self.shadowed:
                self._report(
                    self._node_pointer(position),
                    f"for_each {node.id!r} has an empty body; give its body nodes parentId {node.id!r}",
                )

    def _break_parent_loops(self) -> None:
        state = [0] * len(self.nodes)  # 0 unvisited, 1 on the current chain, 2 done
        for start in range(len(self.nodes)):
            chain: list[int] = []
            current: int | None = start
            while current is not None and state[current] == 0:
                state[current] = 1
                chain.append(current)
                current = self.scope[current]
            if current is not None and state[current] == 1:
                loop = chain[chain.index(current) :]
                names = " -> ".join(repr(self.nodes[p].id) for p in [*loop, current])
                for position in loop:
                    self._report(self._node_pointer(position, "parentId"), f"parentId chain loops: {names}")
                    self.scope[position] = None
            for position in chain:
                state[position] = 2

    def _enclosing(self, position: int) -> Iterable[int]:
        current = self.scope[position]
        while current is not None:
            yield current
            current = self.scope[current]

    def _placed(self, position: int) -> str:
        scope = self.scope[position]
        where = "at the top level" if scope is None else f"in the body of {self.nodes[scope].id!r}"
        return f"{self.nodes[position].id!r} is {where}"

    def _boundaries_and_handles(self) -> None:
        seen: dict[tuple[int, str | None, int], int] = {}
        for edge, source, target in self.links:
            if self.scope[source] != self.scope[target]:
                where = f"{self._placed(source)}, {self._placed(target)}"
                self._report(
                    pointer("edges", edge.index),
                    f"edge crosses a for_each body boundary: {where}; edges join nodes of the same body",
                )
            self._check_handle(edge, self.nodes[source])
            key = (source, edge.source_handle, target)
            if key in seen:
                self._report(
                    pointer("edges", edge.index),
                    f"edge repeats /edges/{seen[key]} (same source, handle and target)",
                )
            else:
                seen[key] = edge.index

    def _check_handle(self, edge: EdgeView, source: NodeView) -> None:
        if source.type is None:
            return
        handle = edge.source_handle
        known = source.handles
        declared = node_types().types[source.type]
        if handle is None:
            if declared.handle_required:
                options = ", ".join(sorted(known if known is not None else declared.handles))
                self._report(
                    pointer("edges", edge.index, "sourceHandle"),
                    f"an edge leaving a {source.type} node needs a sourceHandle: one of {options}",
                )
            return
        if known is None:
            plausible = (
                handle in declared.handles
                or handle == ERROR_HANDLE
                or (source.type == "switch" and handle.startswith(CASE_HANDLE_PREFIX))
            )
            if plausible:
                return
            known = declared.handles
        if handle not in known:
            options = ", ".join(sorted(known)) or "none; leave sourceHandle out"
            hint = " (error edges need on_error 'error_edge')" if handle == ERROR_HANDLE else ""
            self._report(
                pointer("edges", edge.index, "sourceHandle"),
                f"{source.type} node {source.id!r} has no handle {handle!r}{hint}; its handles: {options}",
            )

    def _cycles(self) -> None:
        """Report each edge that closes a cycle (the back edges of a depth-first walk of each
        strongly connected component, started at its first node), with the cycle it closes."""
        successors: list[list[int]] = [[] for _ in self.nodes]
        for _, source, target in self.links:
            successors[source].append(target)
        component_of = [0] * len(self.nodes)
        for number, component in enumerate(_strongly_connected(successors)):
            for position in component:
                component_of[position] = number
        inner: list[list[tuple[EdgeView, int]]] = [[] for _ in self.nodes]
        for edge, source, target in self.links:
            if component_of[source] == component_of[target]:
                inner[source].append((edge, target))
        visited = [False] * len(self.nodes)
        depth_on_path = [-1] * len(self.nodes)
        for start in range(len(self.nodes)):
            if visited[start] or not inner[start]:
                continue
            visited[start] = True
            depth_on_path[start] = 0
            path = [start]
            work = [iter(inner[start])]
            while work:
                step = next(work[-1], None)
                if step is None:
                    work.pop()
                    depth_on_path[path.pop()] = -1
                    continue
                edge, target = step
                if depth_on_path[target] >= 0:
                    self._report_cycle(edge, [*path[depth_on_path[target] :], target])
                elif not visited[target]:
                    visited[target] = True
                    depth_on_path[target] = len(path)
                    path.append(target)
                    work.append(iter(inner[target]))

    def _report_cycle(self, edge: EdgeView, cycle: list[int]) -> None:
        names = [repr(self.nodes[p].id) for p in cycle]
        if len(names) > 12:
            names = [*names[:5], "...", *names[-5:]]
        self._report(
            pointer("edges", edge.index),
            f"edge closes a cycle {' -> '.join(names)}; a workflow loops only through a for_each body",
        )

    def _reachability(self) -> None:
        triggers = [
            p for p, node in enumerate(self.nodes) if node.type == "trigger" and p not in self.shadowed
        ]
        if not triggers:
            return
        following = self._following()
        reached = set(triggers)
        queue = deque(triggers)
        while queue:
            for position in following[queue.popleft()]:
                if position not in reached:
                    reached.add(position)
                    queue.append(position)
        for position, node in enumerate(self.nodes):
            # a body node is reached through its for_each; one with a bad parentId is reported for that
            if position not in reached and position not in self.shadowed and node.parent_id is None:
                self._report(
                    self._node_pointer(position), f"node {node.id!r} cannot be reached from the trigger"
                )

    def _following(self) -> list[list[int]]:
        """Successors along edges, plus each for_each's body (reached through its parent)."""
        following: list[list[int]] = [[] for _ in self.nodes]
        for _, source, target in self.links:
            following[source].append(target)
        for position, scope in enumerate(self.scope):
            if scope is not None:
                following[scope].append(position)
        return following

    def _ancestors(self) -> list[int]:
        """Per node, a bitset of the nodes that can have run before it: its predecessors along
        edges and theirs, and for a body node also everything before its for_each."""
        following = self._following()
        edge_sources: list[list[int]] = [[] for _ in self.nodes]
        for _, source, target in self.links:
            edge_sources[target].append(source)
        ancestors = [0] * len(self.nodes)
        for component in reversed(_strongly_connected(following)):
            combined = 0
            for position in component:
                for source in edge_sources[position]:
                    combined |= ancestors[source] | (1 << source)
                scope = self.scope[position]
                if scope is not None:
                    combined |= ancestors[scope]
            if len(component) > 1:
                for position in component:
                    combined |= 1 << position
            for position in component:
                ancestors[position] = combined
        return ancestors


def _strongly_connected(successors: Sequence[Sequence[int]]) -> list[list[int]]:
    """Tarjan's components, iteratively; a component comes after every component it reaches."""
    count = len(successors)
    order = [-1] * count
    low = [0] * count
    on_stack = [False] * count
    stack: list[int] = []
    components: list[list[int]] = []
    counter = 0
    for root in range(count):
        if order[root] != -1:
            continue
        order[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack[root] = True
        work = [(root, 0)]
        while work:
            vertex, next_child = work[-1]
            children = successors[vertex]
            if next_child < len(children):
                work[-1] = (vertex, next_child + 1)
                child = children[next_child]
                if order[child] == -1:
                    order[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack[child] = True
                    work.append((child, 0))
                elif on_stack[child]:
                    low[vertex] = min(low[vertex], order[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[vertex])
            if low[vertex] == order[vertex]:
                component: list[int] = []
                while True:
                    member = stack.pop()
                    on_stack[member] = False
                    component.append(member)
                    if member == vertex:
                        break
                components.append(component)
    return components
