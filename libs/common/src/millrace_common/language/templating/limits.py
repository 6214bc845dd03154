"""What a template and a render may cost: the limits, and the budgets each render draws from.

Loops draw from a :class:`_LoopBudget` of :data:`MAX_LOOP_ITERATIONS`; everything a render builds,
reads or writes is charged to one :class:`_Budget`, opened by :func:`_rendering` and shared by the
renders nested inside it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from millrace_common.language.templating.errors import TemplateError

MAX_SOURCE_CHARS = 16 * 1024
DEFAULT_MAX_OUTPUT_CHARS = 64 * 1024
MAX_LOOP_ITERATIONS = 10_000
MAX_NESTING = 100
MAX_SEQUENCE_LENGTH = 64 * 1024
"""Items one ``*`` or ``+`` may build (the items of nested lists and objects count too), or characters."""
MAX_POWER_BITS = 10_000
MAX_RENDER_ITEMS = 1_000_000
"""Values one render may handle in all: built by ``*``, ``+`` and slices, read by the filters that walk a
list, written out as JSON (every item of every list and object is one)."""
MAX_RENDER_BYTES = 1024 * 1024
"""JSON and text one render may write in all: results, text written from values (``{{ }}`` in text,
``~``, ``join``), ``json`` and the text filters' results, about as many bytes as compact JSON takes."""


class _LoopBudget:
    """How many more loop iterations this render may run."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining

    def iterate(self, items: Iterable[object]) -> Iterator[object]:
        for item in items:
            self.remaining -= 1
            if self.remaining < 0:
                raise TemplateError(f"loops ran more than {MAX_LOOP_ITERATIONS} times")
            yield item


class _Budget:
    """What one render may still handle (:data:`MAX_RENDER_ITEMS`) and write (:data:`MAX_RENDER_BYTES`).

    Charged before a value is built, so going over refuses the template before the value exists."""

    __slots__ = ("bytes", "items")

    def __init__(self) -> None:
        self.items = MAX_RENDER_ITEMS
        self.bytes = MAX_RENDER_BYTES

    def spend(self, items: int = 0, size: int = 0) -> None:
        self.items -= items
        self.bytes -= size
        if self.items < 0:
            raise TemplateError(
                f"rendering would handle more than {MAX_RENDER_ITEMS:,} values in all "
                "(every item of every list and object counts)"
            )
        if self.bytes < 0:
            raise TemplateError(
                f"rendering would write more than {MAX_RENDER_BYTES:,} bytes (1 MiB) of JSON and text in all"
            )


_BUDGET: ContextVar[_Budget | None] = ContextVar("millrace_template_budget", default=None)


@contextmanager
def _rendering() -> Iterator[None]:
    """One budget for everything rendered inside: the outermost call opens it, inner ones share it."""
    if _BUDGET.get() is not None:
        yield
        return
    token = _BUDGET.set(_Budget())
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _budget() -> _Budget:
    # Outside a render (Jinja folding a constant while compiling) a charge has a budget of its own.
    return _BUDGET.get() or _Budget()
