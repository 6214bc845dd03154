"""A tenant id as one segment of a Kafka topic name, and back.

A topic name may hold only ``[A-Za-z0-9._-]``; a tenant id may also hold ``:``. And a tenant's topics
are ``tenant.<segment>.<name>``, so a segment must hold no ``.``: otherwise tenant ``acme``'s prefix
``tenant.acme.`` would also be the start of tenant ``acme.eu``'s topics, and a prefixed ACL of one
tenant would cover the other's. The segment therefore escapes with ``_``: ``_`` is written ``__``,
``.`` is written ``_d`` and ``:`` is written ``_c``; letters, digits and ``-`` stand for themselves
(``acme`` -> ``acme``, ``acme.eu`` -> ``acme_deu``, ``my_co`` -> ``my__co``). The mapping is one to
one, so the topic a message came in on names exactly one tenant."""

from __future__ import annotations

import re

_ESCAPES = {"_": "__", ".": "_d", ":": "_c"}
_UNESCAPES = {escaped[1]: plain for plain, escaped in _ESCAPES.items()}
SEGMENT = re.compile(r"[A-Za-z0-9_-]+")


def tenant_segment(tenant_id: str) -> str:
    """``tenant_id`` as a topic-name segment without dots."""
    return "".join(_ESCAPES.get(c, c) for c in tenant_id)


def tenant_from_segment(segment: str) -> str | None:
    """The tenant id that :func:`tenant_segment` wrote as ``segment``, or None when no tenant id is
    written so (a stray ``_``, a character outside the segment alphabet)."""
    if not SEGMENT.fullmatch(segment):
        return None
    out: list[str] = []
    chars = iter(segment)
    for c in chars:
        if c != "_":
            out.append(c)
            continue
        plain = _UNESCAPES.get(next(chars, ""))
        if plain is None:
            return None
        out.append(plain)
    return "".join(out)
