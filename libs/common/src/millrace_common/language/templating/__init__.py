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

The package, from the entry points down: :mod:`.rendering` (check and render), :mod:`.compiling`
(parse, check and prepare a template once), :mod:`.checking` (the save-time check), :mod:`.sandbox`
(the Jinja environment and its checked operators), :mod:`.filters` and :mod:`.functions`,
:mod:`.conversion` (values as JSON and as text), :mod:`.values`, :mod:`.limits` (the limits and the
per-render budgets) and :mod:`.errors`.
"""

from __future__ import annotations

# `_compile` and `_render_with_jinja` stay reachable here for the tests that compare the Jinja-free path
# with Jinja's.
from millrace_common.language.templating.checking import TEMPLATE_FILTERS, TEMPLATE_FUNCTIONS, TemplateCheck
from millrace_common.language.templating.compiling import _compile as _compile
from millrace_common.language.templating.errors import TemplateError
from millrace_common.language.templating.limits import MAX_RENDER_BYTES, MAX_RENDER_ITEMS, MAX_SOURCE_CHARS
from millrace_common.language.templating.rendering import _render_with_jinja as _render_with_jinja
from millrace_common.language.templating.rendering import (
    check_template,
    has_template,
    render_string,
    render_value,
)

__all__ = [
    "MAX_RENDER_BYTES",
    "MAX_RENDER_ITEMS",
    "MAX_SOURCE_CHARS",
    "TEMPLATE_FILTERS",
    "TEMPLATE_FUNCTIONS",
    "TemplateCheck",
    "TemplateError",
    "check_template",
    "has_template",
    "render_string",
    "render_value",
]
