"""Whose tasks a caller sees. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from millrace_common.platform.auth import Principal


@dataclass(frozen=True)
class Addressee:
    """A caller as tasks name them: a user by id or email (any case), and anyone by their roles."""

    names: tuple[str, ...]
    roles: tuple[str, ...]


def addressee(principal: Principal, email: str | None) -> Addressee:
    """``email`` is the user's (None for an API key, which has only its roles)."""
    names = (str(principal.subject),) if email is None else (str(principal.subject), email.lower())
    return Addressee(names, tuple(sorted(str(role) for role in principal.roles)))
