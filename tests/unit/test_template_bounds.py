"""What one render may make is bounded in total, however it is made: ``*`` and ``+`` count the items of
nested lists, and every render shares one budget of values handled and bytes written, charged before
anything is built, so hostile templates fail fast with a message and without using memory."""

from __future__ import annotations

import time
import tracemalloc
from datetime import UTC, datetime
from uuid import UUID

import pytest
from millrace_common.language.templating import (
    MAX_RENDER_BYTES,
    MAX_RENDER_ITEMS,
    TemplateError,
    render_string,
    render_value,
)

pytestmark = pytest.mark.unit

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
TEXT = "x" * 100_000
CONTEXT = {
    "trigger": {
        "text": TEXT,
        "long": list(range(100_000)),
        "page": {"rows": [{"id": i, "name": f"row {i}", "tags": ["a", "b"]} for i in range(10_000)]},
    }
}


def render(value, context=CONTEXT):
    return render_value(value, context, now=NOW, new_id=lambda: UUID(int=1))


def refused_quickly(value, message: str, context=CONTEXT) -> str:
    """Renders ``value`` expecting a TemplateError matching ``message``, in little time and memory."""
    began = time.perf_counter()
    with pytest.raises(TemplateError, match=message) as refused:
        render(value, context)
    took = time.perf_counter() - began
    assert took < 2.0, f"took {took:.2f} s"  # unbounded, it would take minutes or all the memory
    tracemalloc.start()  # again, counting memory (tracing makes it slower)
    try:
        with pytest.raises(TemplateError, match=message):
            render(value, context)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 48 * 1024 * 1024, f"used {peak / 1e6:.0f} MB"
    return str(refused.value)


@pytest.mark.parametrize(
    "source",
    [
        "{{ [[0] * 300] * 300 }}",
        "{{ [[0] * 65536] * 65536 }}",
        "{{ [[[0] * 65536] * 65536] * 65536 }}",
        "{{ 300 * [300 * [0]] }}",
        "{{ [{'a': [0] * 65536}] * 2 }}",
        "{{ ([[0] * 40000] + [[0] * 40000]) }}",
        "{{ ([[0] * 65536] * 65536) | length }}",
        "{{ ([[0] * 65536] * 65536) | json }}",
    ],
)
def test_operators_count_the_items_of_nested_lists(source):
    message = refused_quickly({"v": source}, r"would build more than 65536 items")
    assert message.startswith("v: ")


def test_what_one_operator_may_build_stays_as_it_was():
    assert len(render("{{ [0] * 65536 }}")) == 65536
    assert render("{{ [[0] * 100] * 100 }}") == [[0] * 100] * 100
    assert len(render("{{ 'ab' * 32768 }}")) == 65536
    assert render("{{ [1, 2] + [[3]] }}") == [1, 2, [3]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        # each variable is allowed; together they are too much for one node
        ({f"v{i}": "{{ [0] * 60000 }}" for i in range(20)}, "values in all|bytes"),
        ({f"v{i}": "{{ trigger.long }}" for i in range(12)}, "values in all|bytes"),
        ("{{ [" + ", ".join(["trigger.long"] * 11) + "] }}", "values in all|bytes"),
        ("{{ [" + ", ".join(["trigger.long[:]"] * 11) + "] | length }}", "values in all"),
        ("{{ [" + ", ".join(["trigger.text | upper"] * 11) + "] | length }}", "bytes"),
        ("{{ ([trigger.text] * 65536) | join }}", "bytes"),
        ("{{ " + " ~ ".join(["trigger.text"] * 11) + " | length }}", "bytes"),
        ("{{ ([trigger.text] * 65536) | json | length }}", "bytes"),
        ("{{ (" + " ~ ".join(["trigger.text"] * 11) + ") | length }}", "bytes"),
        ("{{ [" + ", ".join(["trigger.text[1:]"] * 11) + "] | length }}", "bytes"),
        ("{% for i in trigger.long %}{{ ([0] * 65536) | length }}{% endfor %}", "values in all"),
        ("{% for i in trigger.long %}{{ trigger.long | sum }}{% endfor %}", "values in all"),
    ],
)
def test_a_render_has_one_budget_for_everything_it_builds_and_writes(value, message):
    refused_quickly(value, message)


def test_the_budget_is_per_render():
    one_node = {f"v{i}": "{{ trigger.long[:30000] }}" for i in range(3)}
    for _ in range(5):
        assert len(render(one_node)["v2"]) == 30000
    assert len(render_string("{{ [0] * 65536 }}", {}, now=NOW, new_id=lambda: UUID(int=1))) == 65536


def test_real_data_passes_through():
    page = render({"rows": "{{ trigger.page.rows }}", "count": "{{ trigger.page.rows | length }}"})
    assert page["count"] == 10_000 and page["rows"] == CONTEXT["trigger"]["page"]["rows"]
    assert render("{{ trigger.long }}") == list(range(100_000))
    assert render("{{ trigger.long | sum }}") == sum(range(100_000))


def test_the_limits_are_one_million_values_and_one_mebibyte():
    assert (MAX_RENDER_ITEMS, MAX_RENDER_BYTES) == (1_000_000, 1024 * 1024)
    under = {"data": "x" * (MAX_RENDER_BYTES - 1000)}
    assert render({"v": "{{ trigger }}"}, {"trigger": under})["v"] == under
    over = {"data": "x" * (MAX_RENDER_BYTES + 1)}
    refused_quickly({"v": "{{ trigger }}"}, "more than 1,048,576 bytes", context={"trigger": over})


def test_big_numbers_cannot_be_multiplied_without_bound():
    refused_quickly("{{ (2 ** 5000) * (2 ** 5000) * (2 ** 5000) }}", r"'\*' would produce a number larger")
    assert render("{{ (2 ** 4000) * (2 ** 4000) }}") == 2**8000


def test_data_nested_deeper_than_the_stack_converts_without_recursion():
    deep: list = []
    for _ in range(20_000):
        deep = [deep]
    result = render("{{ trigger.deep }}", {"trigger": {"deep": deep}})
    depth = 0
    while result:
        result, depth = result[0], depth + 1
    assert depth == 20_000
