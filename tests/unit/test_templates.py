"""Templates in node configs: native values, text, filters and functions, and a sandbox that holds."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from millrace_common.language.templating import (
    TEMPLATE_FILTERS,
    TEMPLATE_FUNCTIONS,
    TemplateCheck,
    TemplateError,
    check_template,
    has_template,
    render_string,
    render_value,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ID = UUID("8f7c0d2e-1111-4222-8333-944455556666")
CONTEXT = {
    "trigger": {
        "record": {
            "data": {
                "email": "Ada@Example.COM",
                "name": "  ada lovelace  ",
                "amount": 1234.5,
                "count": 3,
                "paid": False,
                "note": None,
                "tags": ["vip", "new"],
                "scores": [3, 1, 2],
                "address": {"city": "London", "zip": "N1"},
                "due": "2026-02-01T09:30:00Z",
                "literal": "{{ trigger.record.data.email }}",
            }
        }
    },
    "nodes": {"classify": {"output": {"label": "lead", "confidence": 0.9}}},
    "vars": {"total": 99.999},
    "item": {"name": "Widget"},
    "items": [{"name": "a"}, {"name": "b"}],
}


def render(value, *, max_output_chars: int = 65536, context=CONTEXT):
    return render_value(value, context, now=NOW, new_id=lambda: ID, max_output_chars=max_output_chars)


# --- values and text --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ trigger.record.data.amount }}", 1234.5),
        ("{{ trigger.record.data.count }}", 3),
        ("{{ trigger.record.data.paid }}", False),
        ("{{ trigger.record.data.note }}", None),
        ("{{ trigger.record.data.tags }}", ["vip", "new"]),
        ("{{ trigger.record.data.address }}", {"city": "London", "zip": "N1"}),
        ("  {{ trigger.record.data.count }}\n", 3),
        ("{{- trigger.record.data.count -}}", 3),
        ("{{ trigger.record.data.count + 1 }}", 4),
        ("{{ items.0.name }}", "a"),
        ("{{ items[-1].name }}", "b"),
        ("{{ trigger.record.data.tags[0:1] }}", ["vip"]),
        ("{{ [1, 'a', none, true] }}", [1, "a", None, True]),
        ("{{ (1, 2) }}", [1, 2]),
        ("{{ {'a': trigger.record.data.count} }}", {"a": 3}),
        ("{# a note #}{{ trigger.record.data.count }}", 3),
    ],
)
def test_a_string_that_is_one_expression_renders_to_its_native_value(source, expected):
    assert render(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("Hello {{ item.name }}", "Hello Widget"),
        ("{{ trigger.record.data.count }} items", "3 items"),
        ("{{ trigger.record.data.count }}{{ trigger.record.data.count }}", "33"),
        ("note: [{{ trigger.record.data.note }}]", "note: []"),
        ("paid: {{ trigger.record.data.paid }}", "paid: false"),
        ("tags: {{ trigger.record.data.tags }}", 'tags: ["vip","new"]'),
        ("at {{ trigger.record.data.address }}", 'at {"city":"London","zip":"N1"}'),
        ("{{ 'x' ~ 1 ~ none ~ true }}", "x1true"),
        ("line\n", "line\n"),
        ("{{ item.name }}\n", "Widget"),
        ("{{ item.name }}!\n", "Widget!\n"),
        ("{% raw %}{{ item.name }}{% endraw %}", "{{ item.name }}"),
    ],
)
def test_any_other_string_renders_to_text(source, expected):
    assert render(source) == expected


def test_every_string_inside_objects_and_lists_is_rendered_but_keys_are_not():
    value = {
        "to": "{{ trigger.record.data.email | lower }}",
        "{{ item.name }}": ["{{ item.name }}", 7, None, {"n": "{{ trigger.record.data.count }}"}],
        "flag": True,
    }
    assert render(value) == {
        "to": "ada@example.com",
        "{{ item.name }}": ["Widget", 7, None, {"n": 3}],
        "flag": True,
    }


def test_values_from_the_context_are_never_rendered_again():
    assert render("{{ trigger.record.data.literal }}") == "{{ trigger.record.data.email }}"
    assert render("see {{ trigger.record.data.literal }}") == "see {{ trigger.record.data.email }}"
    assert render(["{{ trigger.record.data }}"])[0]["literal"] == "{{ trigger.record.data.email }}"


@given(st.text())
def test_plain_text_renders_unchanged(text):
    if "{{" in text or "{%" in text or "{#" in text:
        return
    assert render(text) == text


@given(
    st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(),
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_a_value_read_whole_comes_back_exactly_as_it_was(value):
    assert render("{{ data }}", context={"data": value}) == value


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(alphabet="{}%# ab", max_size=8),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(alphabet="{}%# ab", max_size=5), children, max_size=4)
        ),
        max_leaves=12,
    )
)
def test_a_value_without_templates_renders_to_itself(value):
    """What lets the orchestrator skip rendering a field: without a template in it, rendering gives
    the value back equal; with one, the value is a template somewhere (keys are never one)."""
    if has_template(value):
        assert any(marker in repr(value) for marker in ("{{", "{%", "{#"))
    else:
        assert render_value(value, CONTEXT, now=NOW, new_id=lambda: ID) == value


def test_templates_are_found_inside_lists_and_objects_but_not_in_keys():
    assert has_template({"a": [1, {"b": "x {{ y }}"}]})
    assert has_template(["{% if x %}a{% endif %}"])
    assert has_template("{# note #}")
    assert not has_template({"{{ key }}": "plain", "n": [1, None, True, "a { b } c"]})
    assert not has_template(12)


def test_conditions_and_loops_render_text():
    source = (
        "{% for i in items %}{{ loop.index }}:{{ i.name }}{% if not loop.last %}, {% endif %}{% endfor %}"
    )
    assert render(source) == "1:a, 2:b"
    assert render("{% if trigger.record.data.count > 2 %}many{% else %}few{% endif %}") == "many"
    assert (
        render("{% for t in trigger.record.data.tags if t != 'vip' %}{{ t }}{% else %}none{% endfor %}")
        == "new"
    )


# --- filters and functions --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ trigger.record.data.email | upper }}", "ADA@EXAMPLE.COM"),
        ("{{ trigger.record.data.email | lower }}", "ada@example.com"),
        ("{{ trigger.record.data.name | trim | title }}", "Ada Lovelace"),
        ("{{ trigger.record.data.name | trim }}", "ada lovelace"),
        ("{{ trigger.record.data.tags | length }}", 2),
        ("{{ trigger.record.data.email | length }}", 15),
        ("{{ trigger.record.data.address | length }}", 2),
        ("{{ trigger.record.data.tags | first }}", "vip"),
        ("{{ trigger.record.data.tags | last }}", "new"),
        ("{{ [] | first }}", None),
        ("{{ trigger.record.data.scores | sum }}", 6),
        ("{{ [] | sum }}", 0),
        ("{{ trigger.record.data.scores | min }}", 1),
        ("{{ trigger.record.data.scores | max }}", 3),
        ("{{ trigger.record.data.tags | max }}", "vip"),
        ("{{ trigger.record.data.tags | join(', ') }}", "vip, new"),
        ("{{ trigger.record.data.tags | join }}", "vipnew"),
        ("{{ [1, none, true] | join('-') }}", "1--true"),
        ("{{ trigger.record.data.address | json }}", '{"city":"London","zip":"N1"}'),
        ("{{ trigger.record.data.tags | json(2) }}", '[\n  "vip",\n  "new"\n]'),
        ("{{ trigger.record.data.address | keys }}", ["city", "zip"]),
        ("{{ trigger.record.data.address | values }}", ["London", "N1"]),
        ("{{ trigger.record.data.missing | default('n/a') }}", "n/a"),
        ("{{ nodes.absent.output.label | default('none') }}", "none"),
        ("{{ trigger.record.data.note | default(0) }}", 0),
        ("{{ trigger.record.data.count | default(0) }}", 3),
        ("{{ trigger.record.data.amount | currency }}", "$1,234.50"),
        ("{{ vars.total | currency }}", "$100.00"),
        ("{{ 2.675 | currency }}", "$2.68"),
        ("{{ -1234567.891 | currency('GBP') }}", "-£1,234,567.89"),
        ("{{ trigger.record.data.amount | currency('EUR') }}", "€1,234.50"),
        ("{{ trigger.record.data.amount | currency('jpy') }}", "¥1,235"),
        ("{{ trigger.record.data.amount | currency('CHF') }}", "1,234.50 CHF"),
        ("{{ -0.004 | currency }}", "$0.00"),
        ("{{ trigger.record.data.due | date }}", "2026-02-01"),
        ("{{ trigger.record.data.due | date('%d/%m/%Y') }}", "01/02/2026"),
        ("{{ '2026-02-01' | date }}", "2026-02-01"),
        ("{{ 0 | date }}", "1970-01-01"),
        ("{{ trigger.record.data.due | datetime }}", "2026-02-01T09:30:00Z"),
        ("{{ '2026-02-01' | datetime }}", "2026-02-01T00:00:00"),
        ("{{ '2026-02-01T09:30:00+02:00' | datetime }}", "2026-02-01T09:30:00+02:00"),
        ("{{ 86400 | datetime('%Y-%m-%d %H:%M') }}", "1970-01-02 00:00"),
        ("{{ trigger.record.data.count is number }}", True),
        ("{{ trigger.record.data.paid is number }}", False),
        ("{{ trigger.record.data.missing is defined }}", False),
    ],
)
def test_each_filter_does_what_the_documentation_says(source, expected):
    assert render(source) == expected


def test_the_filter_and_function_lists_are_exactly_the_documented_ones():
    assert TEMPLATE_FILTERS == {
        "upper", "lower", "title", "trim", "length", "first", "last", "sum", "min", "max", "join", "json",
        "keys", "values", "default", "currency", "date", "datetime",
    }  # fmt: skip
    assert TEMPLATE_FUNCTIONS == {
        "now", "today", "timestamp", "uuid", "days_ago", "days_from_now", "start_of_day", "end_of_day",
        "start_of_week", "start_of_month", "days_until", "days_since", "is_overdue",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ now() }}", "2026-03-04T05:06:07Z"),
        ("{{ today() }}", "2026-03-04"),
        ("{{ timestamp() }}", 1772600767),
        ("{{ uuid() }}", str(ID)),
        ("{{ days_ago(3) }}", "2026-03-01T05:06:07Z"),
        ("{{ days_from_now(1.5) }}", "2026-03-05T17:06:07Z"),
        ("{{ days_ago(30) | date }}", "2026-02-02"),
        ("created {{ today() }}", "created 2026-03-04"),
    ],
)
def test_functions_use_the_given_clock_and_id_generator(source, expected):
    assert render(source) == expected


def test_uuid_asks_the_generator_for_each_new_id():
    ids = iter([UUID(int=1), UUID(int=2)])
    rendered = render_string("{{ uuid() }} {{ uuid() }}", {}, now=NOW, new_id=lambda: next(ids))
    assert rendered == f"{UUID(int=1)} {UUID(int=2)}"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ trigger.record.data.amount | upper }}", "upper expects text, got number 1234.5"),
        ("{{ trigger.record.data.email | currency }}", "currency expects a number, got text"),
        ("{{ 5 | currency('euros') }}", "three-letter currency code"),
        ("{{ 'soon' | date }}", "date expects an ISO-8601 date or a Unix timestamp"),
        ("{{ [1, 'a'] | sum }}", "sum expects a list of numbers"),
        ("{{ [1, 'a'] | max }}", "max expects a list of numbers or a list of texts"),
        ("{{ trigger.record.data.tags | keys }}", "keys expects an object"),
        ("{{ true | length }}", "length expects text, a list or an object"),
        ("{{ days_ago('3') }}", "days_ago() expects a number of days, got text '3'"),
    ],
)
def test_a_filter_or_function_given_the_wrong_kind_of_value_says_so(source, message):
    with pytest.raises(TemplateError, match=re.escape(message)):
        render(source)


# --- errors -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "{{ nodes.classify.output.label }} and {{ nodes.clasify.output.label }}",
            "'nodes.clasify' is undefined",
        ),
        ("{{ nodes.classify.output.lable }}", "'nodes.classify.output.lable' is undefined"),
        ("{{ missing }}", "'missing' is undefined"),
        ("{{ items[5].name }}", "'items.5' is undefined"),
        ("{{ trigger.record.data.email.domain }}", "text 'Ada@Example.COM' has no 'domain'"),
        ("{% if nodes.other %}x{% endif %}", "'nodes.other' is undefined"),
        ("{{ missing | lower }}", "'missing' is undefined"),
        ("{{ [missing] }}", "'missing' is undefined"),
    ],
)
def test_a_missing_variable_is_an_error_that_names_its_path(source, message):
    with pytest.raises(TemplateError, match=message):
        render(source)


def test_an_error_inside_a_value_says_where_it_is():
    with pytest.raises(TemplateError, match=r"^body\.lines\[1\]: 'nope' is undefined$"):
        render({"body": {"lines": ["ok", "{{ nope }}"]}})


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ trigger.record.data.email | lowr }}", "unknown filter 'lowr'"),
        ("{{ shout() }}", "unknown function 'shout'"),
        ("{{ now(1) }}", r"now\(\) takes no arguments \(1 given\)"),
        ("{{ days_ago() }}", r"days_ago\(\) takes exactly 1 argument \(0 given\)"),
        ("{{ x | join(',', 2) }}", "filter 'join' takes at most 1 argument"),
        ("{{ x | join(sep=',') }}", "filter 'join' takes positional arguments only"),
        ("{{ x is callable }}", "unknown test 'callable'"),
        ("{{ now }}", r"'now' is a function; call it as now\(\)"),
        ("{{ x.__class__ }}", "access to '__class__' is not allowed"),
        ("{{ x ", "syntax error on line 1"),
        ("{% set x = 1 %}", "the 'set' tag is not allowed"),
    ],
)
def test_the_save_time_check_refuses_what_cannot_render(source, message):
    with pytest.raises(TemplateError, match=message):
        check_template(source)


def test_the_save_time_check_lists_the_paths_a_template_reads():
    check = check_template(
        "{{ nodes.classify.output.label }} {{ trigger.record.data['email'] | lower }} {{ items[0].name }}"
        "{% for row in trigger.record.data.rows %}"
        "{{ row.total }}{{ vars.prices[row.sku].amount }}{% endfor %}"
        "{{ now() }}{{ item.name if item is defined else '' }}"
    )
    assert check == TemplateCheck(
        references=frozenset(
            {
                ("nodes", "classify", "output", "label"),
                ("trigger", "record", "data", "email"),
                ("items", "0", "name"),
                ("trigger", "record", "data", "rows"),
                ("vars", "prices"),
                ("item", "name"),
                ("item",),
            }
        )
    )


def test_plain_text_needs_no_check_and_reads_nothing():
    assert check_template("just text " * 5000).references == frozenset()


def test_output_and_source_are_bounded():
    with pytest.raises(TemplateError, match="longer than 10 characters"):
        render("{{ trigger.record.data.email }}!", max_output_chars=10)
    with pytest.raises(TemplateError, match="longer than 10 characters"):
        render("{{ trigger.record.data.email }}", max_output_chars=10)
    with pytest.raises(TemplateError, match="longer than 16384 characters"):
        check_template("{{ x }}" + " " * 16384)
    with pytest.raises(TemplateError, match="longer than 16384 characters"):
        render("{{ x }}" + " " * 16384)


def test_loops_have_a_budget_so_nested_loops_over_large_data_stop():
    rows = list(range(1000))
    with pytest.raises(TemplateError, match="loops ran more than 10000 times"):
        render("{% for a in rows %}{% for b in rows %}{% endfor %}{% endfor %}", context={"rows": rows})


# --- hostile templates ------------------------------------------------------------------------------

HOSTILE = [
    "{{ ''.__class__.__mro__ }}",
    "{{ x.__globals__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__ }}",
    "{{ request.application }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ ''['__cla'+'ss__'] }}",
    "{{ trigger['__cla' ~ 'ss__'] }}",
    "{{ ()|attr('__class__') }}",
    "{{ namespace.__init__ }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ '%s' % x }}",
    "{{ trigger.record.data.email % 1 }}",
    "{{ 'a'.format }}",
    "{{ 'a{0}'.format(x) }}",
    "{{ x.mro() }}",
    "{{ 'a' * 100000000 }}",
    "{{ [0] * 100000000 }}",
    "{{ range(10**9) | list }}",
    "{{ range(10) }}",
    "{% include 'x' %}",
    "{% import 'os' as os %}",
    "{% from 'os' import system %}",
    "{% extends 'x' %}",
    "{% macro m() %}{% endmacro %}",
    "{% set x = 1 %}",
    "{% block b %}{% endblock %}",
    "{% with a = 1 %}{% endwith %}",
    "{% filter upper %}x{% endfilter %}",
    "{% autoescape false %}x{% endautoescape %}",
    "{{ joiner.__init__ }}",
    "{{ self.__dict__ }}",
    "{{ self }}",
    "{{ trigger|attr('__dict__') }}",
    "{{ trigger.__getitem__ }}",
    "{{ trigger.items() }}",
    "{{ trigger.keys }}",
    "{{ dict.mro }}",
    "{{ 9**9**9**9**9 }}",
    "{{ 9**(9**9) }}",
    "{{ 10.0 ** 400 }}",
    "{{ " + "(" * 500 + "1" + ")" * 500 + " }}",
    "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}",
    "{{ x" + ".a" * 300 + " }}",
    "{% for x in items recursive %}{{ loop(x) }}{% endfor %}",
    "{% for x in items %}{{ loop.cycle('a', 'b') }}{% endfor %}",
    "{% for x in items %}{{ loop.__class__ }}{% endfor %}",
    "{{ now.__globals__ }}",
    "{{ now.__call__ }}",
    "{{ uuid.__closure__ }}",
    "{% for _x in items %}{% endfor %}",
    "{{ _private }}",
    "{{ trigger._secret }}",
    "{{ item['_x'] }}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_a_hostile_template_is_refused_and_never_evaluated(source):
    with pytest.raises(TemplateError):
        check_template(source)
        render(source)


def test_hostile_templates_fail_with_messages_that_say_why():
    cases = {
        "{{ ''.__class__.__mro__ }}": "access to '__class__' is not allowed",
        "{{ ''['__cla'+'ss__'] }}": "access to '__class__' is not allowed",
        "{{ ()|attr('__class__') }}": "unknown filter 'attr'",
        "{{ x.mro() }}": "calling 'x.mro' is not allowed",
        "{{ '%s' % x }}": "string formatting with '%' is not allowed",
        "{{ 'a' * 100000000 }}": "'\\*' would build more than 65536 items",
        "{{ 9**(9**9) }}": "'\\*\\*' would produce a number larger than",
        "{% include 'x' %}": "the 'include' tag is not allowed",
        "{{ self }}": "'self' is not available",
        "{{ config }}": "'config' is undefined",
        "{{ 'a'.format }}": "text 'a' has no 'format'",
        "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}": "nested too deeply",
    }
    for source, message in cases.items():
        with pytest.raises(TemplateError, match=message):
            render(source)


# --- templates of text and paths, rendered without Jinja -----------------------------------------------

_KEYS = st.sampled_from(["a", "b", "items", "keys", "0", "x y"]) | st.integers(min_value=-3, max_value=3)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(["a", "b", "items", "keys", "0", "x y"]), children, max_size=4)
    ),
    max_leaves=12,
)


def _spell(root: str, keys: list) -> str:
    spelled = root
    for key in keys:
        if isinstance(key, int):
            spelled += f"[{key}]"
        elif key.isidentifier():
            spelled += f".{key}"
        else:
            spelled += f"['{key}']"
    return spelled


def _outcome(source: str, context: dict, limit: int):
    try:
        return ("value", render_string(source, context, now=NOW, new_id=lambda: ID, max_output_chars=limit))
    except TemplateError as error:
        return ("error", str(error))


def _with_jinja(source: str, context: dict, limit: int):
    from millrace_common.language import templating

    try:
        compiled = templating._compile(source)
        rendered = templating._render_with_jinja(
            compiled, context, now=NOW, new_id=lambda: ID, max_output_chars=limit
        )
        return ("value", rendered)
    except TemplateError as error:
        return ("error", str(error))


@settings(max_examples=400)
@given(
    context=st.dictionaries(st.sampled_from(["trigger", "vars", "now"]), _JSON, max_size=3),
    pieces=st.lists(
        st.tuples(st.sampled_from(["trigger", "vars", "missing", "now"]), st.lists(_KEYS, max_size=2))
        | st.sampled_from(["", " ", "text ", "\n"]),
        min_size=1,
        max_size=4,
    ),
    limit=st.sampled_from([5, 65536]),
)
def test_text_and_paths_render_as_jinja_renders_them(context, pieces, limit):
    """Templates made of text and variable paths skip Jinja; what they give (or the error) must not change."""
    source = "".join(p if isinstance(p, str) else "{{ " + _spell(p[0], p[1]) + " }}" for p in pieces)
    if "{{" not in source:
        return
    assert _outcome(source, context, limit) == _with_jinja(source, context, limit)


def test_templates_of_text_and_paths_are_recognised():
    from millrace_common.language import templating

    assert templating._compile("{{ trigger.lead['e-mail'][0] }}").paths == (
        ("trigger", ("lead", "e-mail", 0)),
    )
    assert templating._compile("run {{ vars.n }}!").paths == ("run ", ("vars", ("n",)), "!")
    for source in ("{{ x | upper }}", "{{ now() }}", "{{ a.b + 1 }}", "{% if a %}x{% endif %}"):
        assert templating._compile(source).paths is None
