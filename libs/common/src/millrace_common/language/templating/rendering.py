"""The entry points: :func:`check_template` when a workflow is saved, :func:`render_value` and
:func:`render_string` when a node runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from uuid import UUID

from jinja2.exceptions import TemplateError as JinjaError
from pydantic import JsonValue

from millrace_common.language.templating.checking import TemplateCheck
from millrace_common.language.templating.compiling import (
    _NOT_PLAIN,
    _compile,
    _Compiled,
    _evaluate,
    _join_within,
    _render_paths,
)
from millrace_common.language.templating.conversion import _to_json
from millrace_common.language.templating.errors import TemplateError
from millrace_common.language.templating.functions import _functions
from millrace_common.language.templating.limits import (
    DEFAULT_MAX_OUTPUT_CHARS,
    MAX_LOOP_ITERATIONS,
    _LoopBudget,
    _rendering,
)
from millrace_common.language.templating.sandbox import _LOOP_BUDGET, _describe_missing, _MissingValue


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


def has_template(value: JsonValue) -> bool:
    """Whether :func:`render_value` would render anything in ``value``: some string inside it (object
    keys aside) is a template. When not, rendering gives back an equal value."""
    if isinstance(value, str):
        return _looks_like_template(value)
    if isinstance(value, list):
        return any(has_template(item) for item in value)
    if isinstance(value, dict):
        return any(has_template(item) for item in value.values())
    return False
