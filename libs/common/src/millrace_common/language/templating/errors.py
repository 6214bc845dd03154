"""The one error templates raise, at save time and at run time."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template that cannot be accepted or rendered; the message says why, for the person who wrote it."""
