"""Whose record event it is: the tenant the channel proves, never the one the message claims.

An outside producer writes its tenant's ingress topic (``tenant.<tenant>.records.ingress``), which the
broker lets only principals granted that tenant write; the topic's name is the proof. The platform's
own producers write ``records.events``, which no outside principal may write. An event whose
``tenant_id`` is not the tenant its topic proves is refused (it starts nothing anywhere)."""

from __future__ import annotations


def refusal(proven_tenant: str | None, claimed_tenant: str) -> str | None:
    """Why an event claiming ``claimed_tenant`` is refused, or None when it may be matched.
    ``proven_tenant`` is the tenant of the ingress topic it came in on, None for ``records.events``
    (the platform's topic, whose writers are the platform's services)."""
    if proven_tenant is None or proven_tenant == claimed_tenant:
        return None
    return (
        f"tenant_id {claimed_tenant!r} is not the tenant of this ingress topic ({proven_tenant!r}):"
        " a producer writes only its own tenant's events"
    )
