"""validate_definition: every problem of a submitted definition at once, each pointing into the JSON."""

from __future__ import annotations

import copy
import json
from itertools import pairwise

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from millrace_common.language.workflow import WorkflowDefinition
from millrace_common.language.workflow_validation import Problem, stored_size_problem, validate_definition

from tests.unit.workflow_examples import edge, every_node_type, minimal, node

pytestmark = pytest.mark.unit


def problems(raw) -> list[tuple[str, str]]:
    report = validate_definition(raw)
    assert (report.definition is None) == bool(report.problems)
    return [(p.pointer, p.message) for p in report.problems]


def only_problem(raw) -> tuple[str, str]:
    (found,) = problems(raw)
    return found


def chain(*nodes: dict, edges: list[dict] | None = None) -> dict:
    """A manual trigger 'start', then the given nodes, linked in order unless edges are given."""
    start = node("start", "trigger", name="Start", kind="manual")
    ids = ["start", *(n["id"] for n in nodes)]
    links = edges if edges is not None else [edge(a, b) for a, b in pairwise(ids)]
    return {"nodes": [start, *nodes], "edges": links}


def end(node_id: str = "done", **data) -> dict:
    return node(node_id, "end", name=node_id, **data)


def set_node(node_id: str, value: object, parent: str | None = None) -> dict:
    return node(node_id, "set", parent=parent, name=node_id, variables={"v": value})


def for_each(node_id: str = "loop", items: str = "{{ trigger.items }}", parent: str | None = None) -> dict:
    return node(node_id, "for_each", parent=parent, name=node_id, items=items)


# -- valid input ----------------------------------------------------------------------------------


def test_a_valid_definition_comes_back_typed_with_no_problems():
    report = validate_definition(every_node_type())

    assert report.ok and report.problems == ()
    assert report.definition == WorkflowDefinition.model_validate(every_node_type())


def test_json_text_bytes_and_mappings_validate_alike():
    raw = json.dumps(every_node_type())

    assert validate_definition(raw).definition == validate_definition(raw.encode()).definition
    assert validate_definition(raw).definition == validate_definition(every_node_type()).definition


# -- config problems, mapped to pointers ----------------------------------------------------------


def test_a_bad_node_config_points_at_the_field_without_the_union_tag():
    definition = chain(node("call", "http_request", name="Call", url="ftp://x"), end())

    assert only_problem(definition) == (
        "/nodes/1/data/url",
        "String should match pattern '^(https?://|\\{\\{)'",
    )


def test_a_missing_field_points_where_it_belongs():
    definition = chain(node("ask", "ai_prompt", name="Ask"), end())

    assert only_problem(definition) == ("/nodes/1/data/prompt", "Field required")


def test_an_unknown_node_type_points_at_the_type():
    pointer, message = only_problem(chain(node("x", "teleport", name="X"), end()))

    assert pointer == "/nodes/1/type"
    assert message.startswith("unknown node type 'teleport'; the types are trigger, ai_prompt")


def test_an_unknown_operator_deep_in_a_condition_points_at_the_operator():
    condition = {"or": [{"not": {"field": "trigger.x", "operator": "resembles", "value": 1}}]}
    definition = chain(
        node("check", "condition", name="Check", condition=condition),
        end(),
        edges=[edge("start", "check"), edge("check", "done", "true")],
    )

    pointer, message = only_problem(definition)
    assert pointer == "/nodes/1/data/condition/or/0/not/operator"
    assert message.startswith("Input should be 'equals', 'not_equals'")


def test_a_bad_variable_name_points_at_the_variable():
    definition = chain(node("keep", "set", name="Keep", variables={"bad-name": 1}), end())

    assert only_problem(definition) == (
        "/nodes/1/data/variables/bad-name",
        "String should match pattern '^[A-Za-z_][A-Za-z0-9_]*$'",
    )


def test_a_cross_field_rule_points_at_the_field_it_is_about():
    definition = chain(
        node("call", "http_request", name="Call", url="https://x.test", on_error="fallback"), end()
    )

    assert only_problem(definition) == (
        "/nodes/1/data/fallback_output",
        'on_error "fallback" needs a fallback_output object',
    )


def test_a_pointer_escapes_slashes_and_tildes_in_member_names():
    definition = chain(
        node("call", "http_request", name="Call", url="https://x.test", headers={"a/b~c": 1}), end()
    )

    assert only_problem(definition)[0] == "/nodes/1/data/headers/a~1b~0c"


def test_settings_and_edges_are_checked_too():
    definition = minimal()
    definition["settings"] = {"timeout_minutes": 0}
    definition["edges"][0]["colour"] = "red"

    assert problems(definition) == [
        ("/edges/0/colour", "Extra inputs are not permitted"),
        ("/settings/timeout_minutes", "Input should be greater than or equal to 1"),
    ]


# -- graph problems -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        pytest.param(
            chain(end("a"), end("a"), edges=[edge("start", "a")]),
            ("/nodes/2/id", "duplicate node id 'a' (also /nodes/1)"),
            id="duplicate node id",
        ),
        pytest.param(
            chain(
                end(),
                end("other"),
                edges=[edge("start", "done"), {**edge("start", "other"), "id": "start->done"}],
            ),
            ("/edges/1/id", "duplicate edge id 'start->done' (also /edges/0)"),
            id="duplicate edge id",
        ),
        pytest.param(
            chain(end(), edges=[edge("start", "done"), edge("start", "nowhere")]),
            ("/edges/1/target", "edge refers to unknown node 'nowhere'"),
            id="dangling target",
        ),
        pytest.param(
            chain(end(), edges=[edge("start", "done"), edge("ghost", "done")]),
            ("/edges/1/source", "edge refers to unknown node 'ghost'"),
            id="dangling source",
        ),
        pytest.param(
            {"nodes": [end()], "edges": []},
            ("/nodes", "a workflow has exactly one trigger node, found 0"),
            id="no trigger",
        ),
        pytest.param(
            chain(
                end(),
                node("again", "trigger", name="Again", kind="manual"),
                edges=[edge("start", "done"), edge("again", "done")],
            ),
            ("/nodes/2/type", "a workflow has exactly one trigger node, found 2"),
            id="two triggers",
        ),
        pytest.param(
            chain(end(), end("lost"), edges=[edge("start", "done")]),
            ("/nodes/2", "node 'lost' cannot be reached from the trigger"),
            id="unreachable node",
        ),
        pytest.param(
            chain(end(), edges=[edge("start", "done", "yes")]),
            (
                "/edges/0/sourceHandle",
                "trigger node 'start' has no handle 'yes'; its handles: none; leave sourceHandle out",
            ),
            id="handle on a plain node",
        ),
        pytest.param(
            chain(end(), edges=[edge("start", "done", "error")]),
            (
                "/edges/0/sourceHandle",
                (
                    "trigger node 'start' has no handle 'error' (error edges need on_error 'error_edge'); "
                    "its handles: none; leave sourceHandle out"
                ),
            ),
            id="error handle without error_edge",
        ),
        pytest.param(
            chain(
                node(
                    "check",
                    "condition",
                    name="Check",
                    condition={"field": "trigger.x", "operator": "is_empty"},
                ),
                end(),
                edges=[edge("start", "check"), edge("check", "done", "maybe")],
            ),
            (
                "/edges/1/sourceHandle",
                "condition node 'check' has no handle 'maybe'; its handles: false, true",
            ),
            id="unknown condition handle",
        ),
        pytest.param(
            chain(
                node(
                    "check",
                    "condition",
                    name="Check",
                    condition={"field": "trigger.x", "operator": "is_empty"},
                ),
                end(),
            ),
            (
                "/edges/1/sourceHandle",
                "an edge leaving a condition node needs a sourceHandle: one of false, true",
            ),
            id="condition edge without a handle",
        ),
        pytest.param(
            chain(
                node(
                    "route",
                    "switch",
                    name="Route",
                    cases=[
                        {
                            "name": "big",
                            "condition": {"field": "trigger.n", "operator": "greater_than", "value": 9},
                        }
                    ],
                ),
                end(),
                edges=[edge("start", "route"), edge("route", "done", "case:small")],
            ),
            (
                "/edges/1/sourceHandle",
                "switch node 'route' has no handle 'case:small'; its handles: case:big, default",
            ),
            id="unknown switch case",
        ),
        pytest.param(
            chain(node("ok", "approval", name="OK?", assignee={"role": "boss"}, title="OK?"), end()),
            (
                "/edges/1/sourceHandle",
                "an edge leaving a approval node needs a sourceHandle: one of approved, rejected, timeout",
            ),
            id="approval edge without a handle",
        ),
        pytest.param(
            chain(end(), edges=[edge("start", "done"), {**edge("start", "done"), "id": "again"}]),
            ("/edges/1", "edge repeats /edges/0 (same source, handle and target)"),
            id="repeated edge",
        ),
        pytest.param(
            chain(end(), set_node("inner", 1, parent="nowhere"), edges=[edge("start", "done")]),
            ("/nodes/2/parentId", "parentId 'nowhere' is not a node"),
            id="unknown parent",
        ),
        pytest.param(
            chain(end(), set_node("inner", 1, parent="done"), edges=[edge("start", "done")]),
            ("/nodes/2/parentId", "parentId 'done' names a 'end' node; only a for_each has a body"),
            id="parent that is not a for_each",
        ),
        pytest.param(
            chain(for_each(), edges=[edge("start", "loop")]),
            ("/nodes/1", "for_each 'loop' has an empty body; give its body nodes parentId 'loop'"),
            id="empty for_each body",
        ),
        pytest.param(
            chain(
                for_each(),
                set_node("inner", 1, parent="loop"),
                end(),
                edges=[edge("start", "loop"), edge("loop", "done"), edge("inner", "done")],
            ),
            (
                "/edges/2",
                (
                    "edge crosses a for_each body boundary: 'inner' is in the body of 'loop', "
                    "'done' is at the top level; edges join nodes of the same body"
                ),
            ),
            id="edge out of a body",
        ),
        pytest.param(
            chain(
                for_each(),
                set_node("inner", 1, parent="loop"),
                edges=[edge("start", "loop"), edge("loop", "inner")],
            ),
            (
                "/edges/1",
                (
                    "edge crosses a for_each body boundary: 'loop' is at the top level, "
                    "'inner' is in the body of 'loop'; edges join nodes of the same body"
                ),
            ),
            id="edge from a for_each into its own body",
        ),
        pytest.param(
            chain(
                for_each("l1"),
                for_each("l2", "{{ item }}", parent="l1"),
                for_each("l3", "{{ item }}", parent="l2"),
                for_each("l4", "{{ item }}", parent="l3"),
                set_node("deep", "{{ item }}", parent="l4"),
                edges=[edge("start", "l1")],
            ),
            ("/nodes/4/parentId", "for_each bodies nest 4 deep here; the limit is 3"),
            id="for_each nested four deep",
        ),
        pytest.param(
            chain(
                set_node("a", 1),
                set_node("b", 1),
                set_node("c", 1),
                edges=[edge("start", "a"), edge("a", "b"), edge("b", "c"), edge("c", "a")],
            ),
            (
                "/edges/3",
                "edge closes a cycle 'a' -> 'b' -> 'c' -> 'a'; a workflow loops only through a for_each body",
            ),
            id="cycle",
        ),
        pytest.param(
            chain(set_node("a", 1), edges=[edge("start", "a"), edge("a", "a")]),
            ("/edges/1", "edge closes a cycle 'a' -> 'a'; a workflow loops only through a for_each body"),
            id="self loop",
        ),
    ],
)
def test_each_graph_problem_is_reported_at_its_pointer(definition, expected):
    assert only_problem(definition) == expected


def test_an_edge_into_the_trigger_is_refused_and_closes_a_cycle():
    definition = chain(set_node("a", 1), edges=[edge("start", "a"), edge("a", "start")])

    assert problems(definition) == [
        ("/edges/1/target", "a trigger cannot have incoming edges"),
        (
            "/edges/1",
            "edge closes a cycle 'start' -> 'a' -> 'start'; a workflow loops only through a for_each body",
        ),
    ]


def test_a_parent_chain_that_loops_is_reported_for_every_node_on_it():
    definition = chain(
        for_each("a", parent="b"),
        for_each("b", parent="a"),
        set_node("inner", 1, parent="a"),
        edges=[edge("start", "a"), edge("start", "b")],
    )

    assert problems(definition) == [
        ("/nodes/1/parentId", "parentId chain loops: 'a' -> 'b' -> 'a'"),
        ("/nodes/2/parentId", "parentId chain loops: 'a' -> 'b' -> 'a'"),
    ]


def test_a_trigger_cannot_sit_in_a_body():
    definition = chain(for_each(), set_node("inner", 1, parent="loop"), edges=[edge("start", "loop")])
    definition["nodes"][0]["parentId"] = "loop"

    assert ("/nodes/0/parentId", "a trigger cannot be inside a for_each body") in problems(definition)


def test_error_edges_and_plain_edges_are_allowed_where_the_config_has_them():
    definition = chain(
        node("call", "http_request", name="Call", url="https://x.test", on_error="error_edge"),
        for_each(items="{{ nodes.call.output.body }}"),
        set_node("inner", "{{ item }}", parent="loop"),
        end(),
        edges=[
            edge("start", "call"),
            edge("call", "loop"),
            edge("call", "done", "error"),
            edge("loop", "done", "done"),
        ],
    )

    assert problems(definition) == []


def test_several_problems_come_back_together():
    definition = chain(
        node("call", "http_request", name="Call", url="ftp://x"),
        node(
            "check",
            "condition",
            name="Check",
            condition={"field": "nodes.later.output", "operator": "is_empty"},
        ),
        set_node("later", "{{ nodes.nowhere.output }}"),
        end(),
        end("lost"),
        edges=[
            edge("start", "call"),
            edge("call", "check"),
            edge("check", "later"),
            edge("later", "done"),
            edge("done", "ghost"),
        ],
    )

    assert problems(definition) == [
        ("/nodes/1/data/url", "String should match pattern '^(https?://|\\{\\{)'"),
        ("/edges/4/target", "edge refers to unknown node 'ghost'"),
        (
            "/edges/2/sourceHandle",
            "an edge leaving a condition node needs a sourceHandle: one of false, true",
        ),
        ("/nodes/5", "node 'lost' cannot be reached from the trigger"),
        (
            "/nodes/2/data/condition",
            "condition refers to node 'later', which cannot have run before this node",
        ),
        (
            "/nodes/3/data/variables/v",
            "template refers to node 'nowhere', which cannot have run before this node",
        ),
    ]


# -- templates and conditions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{{ trigger.x ",
            (
                "template error: syntax error on line 1: unexpected end of template, "
                "expected 'end of print statement'."
            ),
        ),
        ("{{ trigger.x | shout }}", "template error: unknown filter 'shout'"),
        (
            "{{ secrets.key }}",
            "template refers to 'secrets', which is not defined; it can use nodes, trigger, vars, workflow",
        ),
        ("{{ item.id }}", "template refers to 'item', which is only defined inside a for_each body"),
        ("{{ index }}", "template refers to 'index', which is only defined inside a for_each body"),
        (
            "{{ nodes.after.output }}",
            "template refers to node 'after', which cannot have run before this node",
        ),
        (
            "{{ nodes.ghost.output }}",
            "template refers to node 'ghost', which cannot have run before this node",
        ),
        ("{{ nodes.here.output }}", "template refers to node 'here', which cannot have run before this node"),
    ],
)
def test_template_problems_point_at_the_string(template, message):
    definition = chain(set_node("before", 1), set_node("here", template), set_node("after", 1), end())

    assert problems(definition) == [("/nodes/2/data/variables/v", message)]


@pytest.mark.parametrize(
    "template",
    [
        "{{ trigger.record.data.email | lower }}",
        "{{ nodes.before.output.variables.v }}",
        "{{ nodes.start.output }} {{ vars.v }} {{ workflow.id }}",
        "{% for x in trigger.items %}{{ x.name }}{% endfor %}",
        "no template at all, {just braces}",
    ],
)
def test_templates_may_read_what_can_have_run_before(template):
    assert problems(chain(set_node("before", 1), set_node("here", template), end())) == []


def test_a_body_reads_its_item_and_what_ran_before_its_for_each_but_not_the_for_each_itself():
    definition = chain(
        set_node("before", 1),
        for_each(items="{{ nodes.before.output }}"),
        set_node("first", "{{ item.id }} {{ index }} {{ nodes.before.output }}", parent="loop"),
        set_node("second", "{{ nodes.first.output }} {{ nodes.loop.output }}", parent="loop"),
        set_node("after", "{{ nodes.loop.output.results }} {{ nodes.first.output }}"),
        edges=[
            edge("start", "before"),
            edge("before", "loop"),
            edge("first", "second"),
            edge("loop", "after", "done"),
        ],
    )

    assert problems(definition) == [
        (
            "/nodes/4/data/variables/v",
            "template refers to node 'loop', which cannot have run before this node",
        ),
        (
            "/nodes/5/data/variables/v",
            "template refers to node 'first', which cannot have run before this node",
        ),
    ]


def test_a_for_each_cannot_read_its_own_item():
    definition = chain(
        for_each(items="{{ item }}"), set_node("inner", 1, parent="loop"), edges=[edge("start", "loop")]
    )

    assert problems(definition) == [
        ("/nodes/1/data/items", "template refers to 'item', which is only defined inside a for_each body")
    ]


def test_nested_bodies_see_every_enclosing_item_and_ancestor():
    definition = chain(
        for_each("outer"),
        for_each("inner", "{{ item.children }}", parent="outer"),
        set_node("leaf", "{{ item }} {{ nodes.start.output }}", parent="inner"),
        edges=[edge("start", "outer")],
    )

    assert problems(definition) == []


def test_condition_fields_are_checked_like_template_references():
    condition = {
        "and": [
            {"field": "nodes.before.output.ok", "operator": "equals", "value": True},
            {"field": "nodes.after.output.ok", "operator": "equals", "value": True},
            {"field": "record.data.x", "operator": "is_empty"},
        ]
    }
    definition = chain(
        set_node("before", 1),
        node("check", "condition", name="Check", condition=condition),
        set_node("after", 1),
        edges=[edge("start", "before"), edge("before", "check"), edge("check", "after", "true")],
    )

    assert problems(definition) == [
        (
            "/nodes/2/data/condition",
            "condition refers to node 'after', which cannot have run before this node",
        ),
        (
            "/nodes/2/data/condition",
            "condition refers to 'record', which is not defined; it can use nodes, trigger, vars, workflow",
        ),
    ]


def test_record_filters_name_record_fields_and_template_their_values():
    filters = {
        "and": [
            {"field": "data.email", "operator": "equals", "value": "{{ trigger.record.data.email }}"},
            {"field": "data.owner", "operator": "equals", "value": "{{ nodes.later.output }}"},
        ]
    }
    definition = chain(
        node("find", "record_find", name="Find", pipeline_id="leads", filters=filters), set_node("later", 1)
    )

    assert problems(definition) == [
        (
            "/nodes/1/data/filters/and/1/value",
            "template refers to node 'later', which cannot have run before this node",
        )
    ]


def test_a_comparison_that_can_never_be_evaluated_is_reported_at_its_value():
    condition = {
        "or": [
            {"field": "trigger.name", "operator": "matches", "value": "(unclosed"},
            {"field": "trigger.tier", "operator": "in", "value": "gold"},
            {"field": "trigger.at", "operator": "before", "value": "{{ trigger.deadline }}"},
        ]
    }
    definition = chain(
        node("check", "condition", name="Check", condition=condition),
        end(),
        edges=[edge("start", "check"), edge("check", "done", "true")],
    )

    assert problems(definition) == [
        ("/nodes/1/data/condition/or/0/value", "invalid pattern '(unclosed': missing ): (unclosed"),
        ("/nodes/1/data/condition/or/1/value", "in needs a list value, got text 'gold'"),
    ]


def test_trigger_conditions_read_the_trigger_only():
    definition = minimal()
    definition["nodes"][0]["data"]["conditions"] = {"field": "nodes.done.output", "operator": "is_empty"}

    assert problems(definition) == [
        (
            "/nodes/0/data/conditions",
            "condition refers to node 'done', which cannot have run before this node",
        )
    ]


# -- limits -----------------------------------------------------------------------------------------


def test_a_body_over_one_mebibyte_is_refused_before_parsing():
    raw = json.dumps({"nodes": [], "edges": [], "padding": "x" * (2 * 1024 * 1024)})

    assert problems(raw) == [("", f"the definition is {len(raw)} bytes; the limit is 1048576 (1 MiB)")]


def test_a_parsed_definition_over_one_mebibyte_is_refused_as_compact_json():
    # What the API hands over: a mapping (the size was only checked on JSON text, so this was stored)
    definition = chain(*(set_node(f"s{i}", "x" * 60_000) for i in range(26)), end())
    size = len(json.dumps(definition, separators=(",", ":")))
    assert size > 1024 * 1024

    limit = "the limit is 1048576 (1 MiB)"
    assert problems(definition) == [("", f"the definition is {size} bytes as compact JSON; {limit}")]
    assert problems(json.dumps(definition, separators=(",", ":"))) == [
        ("", f"the definition is {size} bytes; {limit}")
    ]


def test_a_definition_within_the_limit_as_sent_but_over_it_as_stored_is_refused():
    # Every node's defaults are filled in when it is stored: about 120 more bytes for a set node.
    definition = chain(*(set_node(f"s{i}", "x" * 1_860) for i in range(498)), end())
    assert len(json.dumps(definition, separators=(",", ":"))) < 1024 * 1024
    stored = WorkflowDefinition.model_validate(definition).model_dump_json(by_alias=True)
    assert len(stored) > 1024 * 1024

    message = f"the definition is {len(stored)} bytes as stored (compact JSON with its defaults); "
    assert problems(definition) == [("", message + "the limit is 1048576 (1 MiB)")]
    assert stored_size_problem(WorkflowDefinition.model_validate(minimal())) is None


def test_more_than_five_hundred_nodes_are_refused_before_validating_any():
    definition = {"nodes": [end(f"n{i}") for i in range(501)], "edges": []}

    assert problems(json.dumps(definition)) == [("/nodes", "the definition has 501 nodes; the limit is 500")]
    assert problems(definition) == [("/nodes", "the definition has 501 nodes; the limit is 500")]


def test_more_than_two_thousand_edges_are_refused():
    definition = minimal()
    definition["edges"] = [edge("start", "done")] * 2001

    assert problems(definition) == [("/edges", "the definition has 2001 edges; the limit is 2000")]


def test_deep_nesting_is_refused_from_the_bytes_and_from_a_mapping():
    deep: object = 1
    for _ in range(40):
        deep = {"x": deep}
    definition = minimal()
    definition["nodes"][1]["data"]["output"] = deep

    assert problems(json.dumps(definition)) == [("", "the definition nests 44 levels deep; the limit is 32")]
    assert problems(definition) == [
        ("/nodes/1/data/output" + "/x" * 28, "the definition nests more than 32 levels deep here")
    ]


def test_brackets_inside_strings_do_not_count_as_nesting():
    definition = minimal()
    definition["nodes"][1]["data"]["output"] = {"text": "[[[[{" * 10 + '\\"[[['}

    assert problems(json.dumps(definition)) == []


def test_a_string_over_sixty_four_kibibytes_is_refused_at_its_pointer():
    definition = minimal()
    definition["nodes"][1]["data"]["output"] = {"text": "é" * 40_000}

    assert problems(definition) == [
        ("/nodes/1/data/output/text", "string is 80000 bytes; the limit is 64 KiB")
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "{",
            (
                "the definition is not valid JSON: "
                "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"
            ),
        ),
        ('{"nodes": [NaN]}', "the definition is not valid JSON: NaN is not a JSON number"),
        ("[]", "the definition must be a JSON object with nodes and edges"),
    ],
)
def test_text_that_is_not_a_definition_object_is_one_problem(raw, message):
    assert problems(raw) == [("", message)]


def large_definition(templated: bool) -> dict:
    """500 nodes and nearly 2000 edges: a chain, plus edges from the trigger and from nodes further back."""
    nodes = [node("start", "trigger", name="Start", kind="record_created")]
    links: dict[tuple[str, str], None] = {}
    for i in range(1, 500):
        previous = nodes[-1]["id"]
        earlier = f"n{i // 2}" if i >= 2 else "start"
        url = (
            f"https://x.test/{{{{ nodes.{previous}.output.body.id }}}}/{i}"
            if templated
            else f"https://x.test/{i}"
        )
        body = {
            "lead": "{{ trigger.record.data.email | lower }}",
            "earlier": f"{{{{ nodes.{earlier}.output.status }}}}",
        }
        nodes.append(
            node(f"n{i}", "http_request", name=f"Call {i}", url=url, body=body if templated else {"n": i})
        )
        for source in (previous, earlier, f"n{max(1, i // 3)}", "start"):
            if source != f"n{i}":
                links[(source, f"n{i}")] = None
    return {"nodes": nodes, "edges": [edge(source, target) for source, target in links]}


def test_five_hundred_nodes_and_two_thousand_edges_validate():
    # How long this takes is measured by bench/workflow_validation.py, not asserted here.
    definition = large_definition(templated=False)
    assert len(definition["edges"]) > 1900

    report = validate_definition(json.dumps(definition))
    assert report.ok, report.problems[:3]


def test_five_hundred_nodes_with_a_thousand_distinct_templates_validate():
    report = validate_definition(json.dumps(large_definition(templated=True)))
    assert report.ok, report.problems[:3]


# -- properties ---------------------------------------------------------------------------------------

SIMPLE_TYPES = ("set", "http_request", "end", "wait_delay", "task_notify", "record_delete", "ai_prompt")


def simple_node(node_id: str, node_type: str, reads: str) -> dict:
    text = f"{{{{ nodes.{reads}.output }}}}"
    data = {
        "set": {"variables": {"v": text}},
        "http_request": {"url": "https://x.test/hook", "body": {"from": text}},
        "end": {"output": {"v": text}},
        "wait_delay": {"duration_seconds": 1},
        "task_notify": {"assignee": {"role": "ops"}, "title": text},
        "record_delete": {"pipeline_id": "leads", "record_id": text},
        "ai_prompt": {"prompt": f"Summarise {text}"},
    }[node_type]
    return node(node_id, node_type, name=node_id, **data)


@st.composite
def dags(draw) -> tuple[dict, list[int]]:
    """A random valid DAG: each node after the trigger has at least one earlier predecessor (so it is
    reachable) and reads the output of one of its predecessors; the list is each node's first predecessor."""
    count = draw(st.integers(min_value=1, max_value=25))
    nodes = [node("n0", "trigger", name="Start", kind="manual")]
    edges: list[dict] = []
    first_predecessor = [0]
    for i in range(1, count + 1):
        predecessors = sorted(
            draw(st.sets(st.integers(min_value=0, max_value=i - 1), min_size=1, max_size=3))
        )
        reads = draw(st.sampled_from(predecessors))
        nodes.append(simple_node(f"n{i}", draw(st.sampled_from(SIMPLE_TYPES)), f"n{reads}"))
        edges.extend(edge(f"n{p}", f"n{i}") for p in predecessors)
        first_predecessor.append(predecessors[0])
    return {"nodes": nodes, "edges": edges}, first_predecessor


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
def test_random_dags_whose_templates_read_their_predecessors_always_validate(dag):
    definition, _ = dag

    assert problems(definition) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags(), st.data())
def test_an_edge_that_closes_a_cycle_is_always_reported(dag, data):
    definition, first_predecessor = dag
    last = data.draw(st.integers(min_value=1, max_value=len(definition["nodes"]) - 1))
    ancestor = last
    for _ in range(data.draw(st.integers(min_value=0, max_value=5))):
        if first_predecessor[ancestor] != 0:
            ancestor = first_predecessor[ancestor]
    definition["edges"].append({"id": "closing", "source": f"n{last}", "target": f"n{ancestor}"})

    messages = [message for _, message in problems(definition)]
    assert any(message.startswith("edge closes a cycle") for message in messages)
    with pytest.raises(ValueError, match="closes a cycle"):
        WorkflowDefinition.model_validate(definition)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dags())
def test_a_dumped_definition_validates_back_to_itself(dag):
    definition, _ = dag
    parsed = validate_definition(definition).definition
    assert parsed is not None

    dumped = parsed.model_dump(mode="json", by_alias=True)
    assert validate_definition(dumped).definition == parsed
    assert validate_definition(json.dumps(dumped)).definition == parsed


def leaves(value: object, path: tuple = ()) -> list[tuple]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in leaves(item, (*path, index))]
    return [path]


EXAMPLE_LEAVES = leaves(every_node_type())


def resolves(document: object, pointer: str) -> bool:
    """Whether a pointer names a member of the document, or a missing member of an object in it."""
    if pointer == "":
        return True
    parts = [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]
    current = document
    for position, part in enumerate(parts):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return position == len(parts) - 1 and isinstance(current, dict)
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(EXAMPLE_LEAVES),
            st.one_of(
                st.none(),
                st.integers(-5, 5),
                st.text(max_size=5),
                st.just([]),
                st.just({}),
                st.just("{{ ghost }}"),
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_every_problem_points_into_the_submitted_document(changes):
    document = copy.deepcopy(every_node_type())
    for path, value in changes:
        target = document
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    report = validate_definition(document)

    assert all(isinstance(problem, Problem) for problem in report.problems)
    assert all(resolves(document, problem.pointer) for problem in report.problems), report.problems


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)
NODE_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": st.sampled_from(["a", "b", "start", ""]) | JSON_VALUES,
        "type": st.sampled_from(["trigger", "for_each", "condition", "switch", "set", "nope"]) | JSON_VALUES,
        "parentId": st.sampled_from(["a", "b"]) | JSON_VALUES,
        "data": JSON_VALUES
        | st.fixed_dictionaries({"name": st.text(max_size=3)}, optional={"kind": JSON_VALUES}),
    },
)
EDGE_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "id": JSON_VALUES,
        "source": st.sampled_from(["a", "b", "start"]) | JSON_VALUES,
        "target": st.sampled_from(["a", "b", "start"]) | JSON_VALUES,
        "sourceHandle": st.sampled_from(["true", "error", "case:x"]) | JSON_VALUES,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "nodes": st.lists(NODE_LIKE, max_size=5) | JSON_VALUES,
            "edges": st.lists(EDGE_LIKE, max_size=5) | JSON_VALUES,
            "settings": JSON_VALUES,
            "extra": JSON_VALUES,
        },
    )
)
def test_any_json_gets_a_report_never_an_exception(document):
    report = validate_definition(document)

    assert report.ok == (report.definition is not None)
    assert all(resolves(document, problem.pointer) for problem in report.problems), report.problems
    assert validate_definition(json.dumps(document)).problems == report.problems


def test_numbers_json_cannot_hold_are_refused_in_text_and_in_mappings():
    definition = minimal()
    definition["nodes"][1]["data"]["output"] = {"ratio": float("inf")}

    assert problems(definition) == [("/nodes/1/data/output/ratio", "inf is not a JSON number")]
    assert problems(json.dumps(definition)) == [
        ("", "the definition is not valid JSON: Infinity is not a JSON number")
    ]


def test_lone_surrogates_in_json_text_are_measured_not_fatal():
    assert problems('{"nodes": "\\ud800"}') == [("/nodes", "Input should be a JSON array")]
    assert problems('{"nodes": "\ud800"}') == [("/nodes", "Input should be a JSON array")]
