"""What a use case refuses, as the API answers it: a status, a code (listed in docs/api.md), a detail
for people, and the parts of the request that are wrong. Every service's domain refusals derive from
:class:`Refused`; ``millrace_common.platform.problems`` answers them all as problem details. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    """Which part of the request is wrong (an RFC 6901 pointer such as ``/body/version``), and why."""

    pointer: str
    detail: str


class Refused(Exception):
    """A rule refused the request; ``status``, ``code``, ``detail`` and ``problems`` are the answer."""

    status = 409
    code = "conflict"

    def __init__(self, detail: str, *problems: FieldProblem) -> None:
        super().__init__(detail)
        self.detail = detail
        self.problems = problems

    def extensions(self) -> dict[str, object]:
        """Members the problem JSON carries besides the standard ones (e.g. a new count)."""
        return {}
