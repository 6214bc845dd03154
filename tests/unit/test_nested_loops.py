"""Nested for_each loops: each loop names its item (``item_variable``, default ``item``), a body node
reads every enclosing loop's item by its name and every enclosing body's nodes of the current
iteration; and what save-time validation accepts, the orchestrator renders (a property test)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.language.workflow_validation import validate_definition
from millrace_orchestrator.domain.state import NodeStatus, RunStatus

from tests.unit.run_simulation import Simulation

pytestmark = pytest.mark.unit


def set_node(node_id: str, parent: str | None = None, **variables: object) -> dict:
    node = {"id": node_id, "type": "set", "data": {"name": node_id, "variables": variables}}
    return node | ({"parentId": parent} if parent else {})


def loop(node_id: str, items: str, parent: str | None = None, item_variable: str | None = None) -> dict:
    data = {"name": node_id, "items": items}
    if item_variable is not None:
        data["item_variable"] = item_variable
    return {"id": node_id, "type": "for_each", "data": data} | ({"parentId": parent} if parent else {})


def edge(source: str, target: str, handle: str | None = None) -> dict:
    return {"id": f"{source}-{target}", "source": source, "target": target} | (
        {"sourceHandle": handle} if handle else {}
    )


def definition(nodes: list[dict], edges: list[dict]) -> dict:
    start = {"id": "start", "type": "trigger", "data": {"name": "start", "kind": "manual"}}
    return {"nodes": [start, *nodes], "edges": edges, "settings": {"retry_count": 0}}


def accepted(document: dict):
    report = validate_definition(document)
    assert report.ok, report.problems
    return report.definition


TWO_LEVELS = definition(
    [
        set_node("intro", greeting="hi"),
        loop("rows", "{{ trigger.rows }}", item_variable="row"),
        set_node("label", "rows", name="{{ row.name | upper }}"),
        loop("cells", "{{ row.cells }}", "rows", item_variable="cell"),
        set_node(
            "cell_text",
            "cells",
            text="{{ nodes.intro.output.greeting }} {{ nodes.label.output.name }}:{{ cell }}@{{ index }}",
            row="{{ row.name }}",
        ),
    ],
    [edge("start", "intro"), edge("intro", "rows"), edge("label", "cells")],
)


def test_an_inner_body_reads_the_outer_item_by_its_name_and_the_outer_bodys_nodes_of_the_same_row():
    rows = [{"name": "a", "cells": [1, 2]}, {"name": "b", "cells": [3]}]
    sim = Simulation(accepted(TWO_LEVELS)).start({"rows": rows}).run_to_end()
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("cell_text[0][0]").output == {"text": "hi A:1@0", "row": "a"}
    assert sim.state.node("cell_text[0][1]").output == {"text": "hi A:2@1", "row": "a"}
    assert sim.state.node("cell_text[1][0]").output == {"text": "hi B:3@0", "row": "b"}


THREE_LEVELS = definition(
    [
        loop("countries", "{{ trigger.countries }}", item_variable="country"),
        set_node("c", "countries", code="{{ country.code }}"),
        loop("cities", "{{ country.cities }}", "countries", item_variable="city"),
        set_node("t", "cities", town="{{ city.name }}"),
        loop("streets", "{{ city.streets }}", "cities"),
        set_node(
            "address",
            "streets",
            line="{{ item }}, {{ nodes.t.output.town }}, {{ nodes.c.output.code }}",
            names="{{ [country.code, city.name, item] | join('/') }}",
            at="{{ index }}",
        ),
    ],
    [edge("start", "countries"), edge("c", "cities"), edge("t", "streets")],
)


def test_three_levels_each_see_every_enclosing_item_and_body():
    countries = [
        {"code": "NL", "cities": [{"name": "Delft", "streets": ["Markt", "Oude Delft"]}]},
        {"code": "BE", "cities": [{"name": "Gent", "streets": []}, {"name": "Luik", "streets": ["Rue"]}]},
    ]
    sim = Simulation(accepted(THREE_LEVELS)).start({"countries": countries}).run_to_end()
    assert sim.state.status is RunStatus.COMPLETED
    assert sim.state.node("address[0][0][1]").output == {
        "line": "Oude Delft, Delft, NL",
        "names": "NL/Delft/Oude Delft",
        "at": 1,
    }
    assert sim.state.node("address[1][1][0]").output["line"] == "Rue, Luik, BE"


def test_nested_loops_that_keep_the_default_name_see_the_innermost_item_as_before():
    document = definition(
        [
            loop("outer", "{{ trigger.lists }}"),
            loop("inner", "{{ item }}", "outer"),
            set_node("pick", "inner", value="{{ item * 10 }}"),
        ],
        [edge("start", "outer")],
    )
    sim = Simulation(accepted(document)).start({"lists": [[1, 2], [3]]}).run_to_end()
    assert [sim.state.node(k).output for k in ("pick[0][1]", "pick[1][0]")] == [{"value": 20}, {"value": 30}]


def problems_of(document: dict) -> list[str]:
    return [f"{p.pointer}: {p.message}" for p in validate_definition(document).problems]


@pytest.mark.parametrize("name", ["trigger", "nodes", "vars", "workflow", "index", "loop", "now", "upper"])
def test_an_item_variable_cannot_take_a_reserved_name(name):
    document = definition(
        [loop("each", "{{ trigger.xs }}", item_variable=name), set_node("s", "each", v="{{ index }}")],
        [edge("start", "each")],
    )
    assert any("reserved name" in p and "item_variable" in p for p in problems_of(document))


@pytest.mark.parametrize("name", ["1st", "has space", "a-b", "_private", "x" * 65, ""])
def test_an_item_variable_is_an_identifier(name):
    document = definition(
        [loop("each", "{{ trigger.xs }}", item_variable=name), set_node("s", "each", v="{{ index }}")],
        [edge("start", "each")],
    )
    assert any("item_variable" in p for p in problems_of(document))


def test_a_renamed_items_default_name_and_a_loops_name_outside_its_body_are_refused():
    document = definition(
        [
            loop("rows", "{{ trigger.rows }}", item_variable="row"),
            set_node("inside", "rows", v="{{ item }}"),
            set_node("after", v="{{ row }}"),
        ],
        [edge("start", "rows"), edge("rows", "after", "done")],
    )
    found = problems_of(document)
    assert any("refers to 'item', which is not defined" in p and "row" in p for p in found), found
    assert any("refers to 'row', which is not defined" in p for p in found), found


NAMES = st.sampled_from(["item", "row", "col", "x"])


@settings(max_examples=60, deadline=None)
@given(
    names=st.lists(NAMES, min_size=1, max_size=3),
    references=st.lists(
        st.sampled_from(["item", "row", "col", "x", "index", "n0", "n1", "n2", "m0", "m1"]),
        min_size=1,
        max_size=4,
    ),
)
def test_what_validation_accepts_in_nested_bodies_the_orchestrator_renders(names, references):
    """Loops nested ``len(names)`` deep, each naming its item, a set node ``s<level>`` in each body
    before the next loop (``m<level>``: a set node of that level's body after the loop, never readable
    from inside it). The innermost node reads the chosen references; when the definition validates,
    every instance renders each reference to the value the enclosing iteration gives it."""
    depth = len(names)
    nodes: list[dict] = []
    edges = [edge("start", "l0")]
    for level, name in enumerate(names):
        parent = f"l{level - 1}" if level else None
        nodes.append(
            loop(f"l{level}", "{{ trigger.items }}" if level == 0 else "{{ [10, 20] }}", parent, name)
        )
        body = f"l{level}"
        nodes.append(set_node(f"s{level}", body, v=f"{{{{ index * {level + 1} }}}}"))
        if level + 1 < depth:
            nodes.append(set_node(f"m{level}", body, v="after"))
            edges += [edge(f"s{level}", f"l{level + 1}"), edge(f"l{level + 1}", f"m{level}", "done")]
    spelled = {"n0": "nodes.s0.output.v", "n1": "nodes.s1.output.v", "n2": "nodes.s2.output.v"}
    spelled |= {"m0": "nodes.m0.output.v", "m1": "nodes.m1.output.v"}
    probe = {f"r{i}": f"{{{{ {spelled.get(r, r)} }}}}" for i, r in enumerate(references)}
    nodes.append(set_node("probe", f"l{depth - 1}", **probe))
    edges.append(edge(f"s{depth - 1}", "probe"))
    document = definition(nodes, edges)
    report = validate_definition(document)
    if not report.ok:
        return
    items = [1, 2]
    sim = Simulation(report.definition).start({"items": items}).run_to_end()
    assert sim.state.status is RunStatus.COMPLETED, sim.state.error
    probes = {k: n for k, n in sim.state.nodes.items() if k.startswith("probe[")}
    assert len(probes) == 2 * 2 ** (depth - 1)
    for key, node in probes.items():
        assert node.status is NodeStatus.SUCCEEDED
        indexes = [int(part) for part in key[len("probe[") : -1].split("][")]
        values = [items[indexes[0]], *([10, 20][i] for i in indexes[1:])]
        by_name = {name: values[level] for level, name in enumerate(names)}  # inner names win
        for i, reference in enumerate(references):
            if reference in by_name:
                expected = by_name[reference]
            elif reference == "index":
                expected = indexes[-1]
            else:
                level = int(reference[1])
                expected = indexes[level] * (level + 1)
            assert node.output[f"r{i}"] == expected, (key, reference)
