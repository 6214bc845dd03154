"""The sandbox templates run in: only JSON data, the filters and the functions, with ``*``, ``+``,
``**`` and slices checked and charged to the render's budget, loops drawn from the loop budget, and
undefined values that fail on use with a message naming their path."""

from __future__ import annotations

import functools
import operator
from collections.abc import Iterator, Mapping

from jinja2.exceptions import TemplateError as JinjaError
from jinja2.exceptions import UndefinedError
from jinja2.runtime import Context, LoopContext, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing, pass_context
from pydantic import JsonValue

from millrace_common.language.templating.checking import _refuse_private
from millrace_common.language.templating.conversion import _as_text, _utf8_size
from millrace_common.language.templating.errors import TemplateError
from millrace_common.language.templating.filters import _FILTERS, _TESTS
from millrace_common.language.templating.limits import (
    MAX_POWER_BITS,
    MAX_SEQUENCE_LENGTH,
    _budget,
    _LoopBudget,
)
from millrace_common.language.templating.values import _defined, _describe, _is_number, _TemplateFunction

_LOOP_BUDGET = "_loop_budget"
_LOOP_BUDGET_FILTER = "_within_loop_budget"
_AS_TEXT_FILTER = "_as_text"
_SLICE_FILTER = "_sliced"
_LOOP_FIELDS = frozenset(
    {"index", "index0", "revindex", "revindex0", "first", "last", "length", "previtem", "nextitem"}
)


class _MissingValue(UndefinedError):
    """A strict undefined was used; carries where it came from so the message can name the path."""

    def __init__(self, message: str | None, *, owner: object, name: object) -> None:
        super().__init__(message)
        self.owner = owner
        self.name = name


class _Missing(StrictUndefined):
    """Undefined that fails on any use except ``default`` and ``is defined``; attribute chains pass
    through."""

    __slots__ = ()

    def __init__(
        self,
        hint: str | None = None,
        obj: object = missing,
        name: str | None = None,
        exc: type[JinjaError] = UndefinedError,
    ) -> None:
        super().__init__(hint, obj, name, functools.partial(_MissingValue, owner=obj, name=name))  # type: ignore[arg-type]


def _describe_missing(error: _MissingValue, context: Mapping[str, JsonValue]) -> str:
    if error.owner is missing:
        return f"'{error.name}' is undefined" if error.name is not None else str(error.message)
    if isinstance(error.owner, (Mapping, list, tuple)):
        path = _find_path(context, error.owner)
        where = ".".join((*path, str(error.name))) if path is not None else str(error.name)
        return f"'{where}' is undefined"
    return f"{_describe(error.owner)} has no '{error.name}'"


def _find_path(context: Mapping[str, JsonValue], target: object) -> tuple[str, ...] | None:
    """Where in the context an object sits (by identity), to name it in an error message."""
    pending: list[tuple[tuple[str, ...], object]] = [((key,), value) for key, value in context.items()]
    while pending:
        path, value = pending.pop()
        if value is target:
            return path
        if isinstance(value, Mapping):
            pending.extend(((*path, str(key)), item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend(((*path, str(index)), item) for index, item in enumerate(value))
    return None


class _Sandbox(ImmutableSandboxedEnvironment):
    """Only JSON data, the filters and the functions: no Python attributes, methods or globals."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self) -> None:
        super().__init__(autoescape=False, undefined=_Missing, keep_trailing_newline=True, finalize=_as_text)
        self.globals.clear()
        self.filters = {
            **_FILTERS,
            _LOOP_BUDGET_FILTER: _within_loop_budget,
            _AS_TEXT_FILTER: _as_text,
            _SLICE_FILTER: _sliced,
        }
        self.tests = dict(_TESTS)

    def getattr(self, obj: object, attribute: str) -> object:
        if isinstance(obj, Undefined):
            return obj
        _refuse_private(attribute)
        if isinstance(obj, LoopContext) and attribute in _LOOP_FIELDS:
            return getattr(obj, attribute)
        return self._lookup(obj, attribute)

    def getitem(self, obj: object, argument: object) -> object:
        if isinstance(obj, Undefined):
            return obj
        if isinstance(argument, str):
            _refuse_private(argument)
        return self._lookup(obj, argument)

    def _lookup(self, obj: object, key: object) -> object:
        if isinstance(obj, Mapping):
            if isinstance(key, str) and key in obj:
                return obj[key]
        elif isinstance(obj, (list, tuple, str)):
            if isinstance(key, slice) and all(
                part is None or (isinstance(part, int) and not isinstance(part, bool))
                for part in (key.start, key.stop, key.step)
            ):
                return obj[key]
            if isinstance(key, int) and not isinstance(key, bool) and -len(obj) <= key < len(obj):
                return obj[key]
        return self.undefined(obj=obj, name=str(key))

    def call(self, context: Context, obj: object, /, *args: object, **kwargs: object) -> object:
        if isinstance(obj, Undefined):
            obj._fail_with_undefined_error()
        if not isinstance(obj, _TemplateFunction) or kwargs:
            raise TemplateError(f"calling {_describe(obj)} is not allowed")
        return obj(*args)

    def call_binop(self, context: Context, operator_: str, left: object, right: object) -> object:
        for operand in (left, right):
            if isinstance(operand, Undefined):
                operand._fail_with_undefined_error()
        if operator_ == "%":
            if not (_is_number(left) and _is_number(right)):
                raise TemplateError("'%' only takes numbers; string formatting is not allowed")
            return operator.mod(left, right)
        if operator_ == "**":
            _check_power(left, right)
            return operator.pow(left, right)
        if operator_ == "*":
            _check_multiplication(left, right)
            return operator.mul(left, right)
        _check_concatenation(left, right)
        return operator.add(left, right)


@functools.cache
def _sandbox() -> _Sandbox:
    return _Sandbox()


def _check_power(base: object, exponent: object) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1 and exponent > 0):
        return
    if abs(base).bit_length() * exponent > MAX_POWER_BITS:
        raise TemplateError(f"'**' would produce a number larger than 2**{MAX_POWER_BITS}")


def _check_multiplication(left: object, right: object) -> None:
    """``*`` builds at most MAX_SEQUENCE_LENGTH characters, or items counting those of the lists and
    objects inside (``[[0] * 300] * 300`` is 90,300), and numbers of at most MAX_POWER_BITS bits."""
    if isinstance(left, int) and isinstance(right, int):
        if abs(left).bit_length() + abs(right).bit_length() > MAX_POWER_BITS:
            raise TemplateError(f"'*' would produce a number larger than 2**{MAX_POWER_BITS}")
        return
    for sequence, count in ((left, right), (right, left)):
        if not (isinstance(sequence, (str, list, tuple)) and isinstance(count, int)) or count <= 0:
            continue
        if isinstance(sequence, str):
            if len(sequence) * count > MAX_SEQUENCE_LENGTH:
                raise TemplateError(f"'*' would build more than {MAX_SEQUENCE_LENGTH} items")
            _budget().spend(size=_utf8_size(sequence) * count)
            return
        built = _nested_items(sequence, MAX_SEQUENCE_LENGTH // count) * count
        if built > MAX_SEQUENCE_LENGTH:
            raise TemplateError(
                f"'*' would build more than {MAX_SEQUENCE_LENGTH} items "
                "(the items of the lists and objects inside count too)"
            )
        _budget().spend(items=built)
        return


def _check_concatenation(left: object, right: object) -> None:
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_SEQUENCE_LENGTH:
            raise TemplateError(f"'+' would build more than {MAX_SEQUENCE_LENGTH} items")
        _budget().spend(size=_utf8_size(left) + _utf8_size(right))
    elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        built = _nested_items(left, MAX_SEQUENCE_LENGTH)
        built += _nested_items(right, MAX_SEQUENCE_LENGTH - built)
        if built > MAX_SEQUENCE_LENGTH:
            raise TemplateError(
                f"'+' would build more than {MAX_SEQUENCE_LENGTH} items "
                "(the items of the lists and objects inside count too)"
            )
        _budget().spend(items=built)


def _nested_items(value: list | tuple | Mapping, limit: int) -> int:
    """The items of ``value`` and of every list and object inside it (shared ones as often as they
    occur), counted without recursion and only until the count passes ``limit``."""
    count = 0
    pending: list[object] = [value]
    while pending:
        container = pending.pop()
        members = container.values() if isinstance(container, Mapping) else container  # type: ignore[union-attr]
        count += len(members)  # type: ignore[arg-type]
        if count > limit:
            return count
        pending.extend(member for member in members if isinstance(member, (list, tuple, Mapping)))  # type: ignore[union-attr]
    return count


def _sliced(value: object, start: object, stop: object, step: object) -> object:
    value = _defined(value)
    if not isinstance(value, (list, tuple, str)):
        raise TemplateError(f"only lists and text can be sliced, not {_describe(value)}")
    bounds = [_defined(bound) for bound in (start, stop, step)]
    if not all(bound is None or (isinstance(bound, int) and not isinstance(bound, bool)) for bound in bounds):
        raise TemplateError("slice bounds must be whole numbers")
    part = value[slice(*bounds)]
    if isinstance(part, str):
        _budget().spend(size=_utf8_size(part))
    else:
        _budget().spend(items=len(part))
    return part


@pass_context
def _within_loop_budget(context: Context, items: object) -> Iterator[object]:
    items = _defined(items)
    if not isinstance(items, (list, tuple, str, dict)):
        raise TemplateError(f"cannot loop over {_describe(items)}")
    budget = context.get(_LOOP_BUDGET)
    if not isinstance(budget, _LoopBudget):
        raise TemplateError("loops need a render context")
    return budget.iterate(items)
