"""Grants, and the broker ACLs they mean. Pure.

A grant lets one Kafka principal do one kind of thing for one tenant. The rows live in PostgreSQL
(``producer_grants``); ``millrace-admin grants`` applies them to the broker as ACLs, which is where
they are enforced. One mechanism for every grant: a new kind (a topic a Kafka trigger reads, one a
publish node writes) is a new :class:`GrantKind` and its entry in :func:`acls_of`.

A grant or a revocation changes its own ACLs (:func:`granting`, :func:`revoking`); what the broker
holds is reconciled with what the grants mean by :func:`plan`: the ACLs to add (meant, missing) and to
remove (present on a resource this installation manages, meant by no grant). ACLs on any other
resource (the services' own, another installation's) are never touched."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

from millrace_common.contracts.topics import ALL_TOPICS, RECORDS_INGRESS, Namespace


class GrantKind(StrEnum):
    RECORDS_INGRESS = "records-ingress"
    """Write the tenant's record-event ingress topic (``tenant.<tenant>.records.ingress``)."""


USER_NAME = re.compile(r"[A-Za-z0-9._@-]{1,128}")
"""A SCRAM user name as producers are given it: no ``,`` or ``=`` (SCRAM escapes them), no spaces."""


class BadPrincipal(ValueError):
    pass


def principal_of(name: str) -> str:
    """The Kafka principal of a user name, ``User:<name>`` (a name given as ``User:<name>`` stays)."""
    user = name.removeprefix("User:")
    if not USER_NAME.fullmatch(user):
        raise BadPrincipal(f"{name!r}: a producer's user name is 1-128 letters, digits, '.', '_', '@' or '-'")
    return f"User:{user}"


@dataclass(frozen=True, order=True)
class Grant:
    principal: str
    tenant_id: str
    kind: GrantKind


@dataclass(frozen=True, order=True)
class Acl:
    """One ALLOW binding, in Kafka's words: ``principal`` may do ``operation`` on the resource
    ``resource_type``/``name`` matched ``pattern_type`` (LITERAL: that name; PREFIXED: names starting so)."""

    principal: str
    resource_type: str
    pattern_type: str
    name: str
    operation: str
    host: str = "*"


def acls_of(grants: Iterable[Grant], namespace: Namespace) -> frozenset[Acl]:
    """The ACLs that the grants mean. A tenant's topic is granted LITERAL, never by prefix: a prefix
    of one topic name may begin another tenant's."""
    meant: set[Acl] = set()
    for grant in grants:
        if grant.kind is GrantKind.RECORDS_INGRESS:
            topic = namespace.tenant_topic(RECORDS_INGRESS, grant.tenant_id)
            meant.add(Acl(grant.principal, "TOPIC", "LITERAL", topic, "WRITE"))
    return frozenset(meant)


def managed(acl: Acl, namespace: Namespace) -> bool:
    """Whether ``acl`` is on a resource whose ACLs the grants of this namespace decide: a literal topic
    of a per-tenant family of this namespace."""
    return (
        acl.resource_type == "TOPIC"
        and acl.pattern_type == "LITERAL"
        and any(namespace.tenant_of(topic, acl.name) is not None for topic in ALL_TOPICS if topic.per_tenant)
    )


@dataclass(frozen=True)
class Plan:
    add: tuple[Acl, ...]
    remove: tuple[Acl, ...]

    @property
    def empty(self) -> bool:
        return not self.add and not self.remove


def plan(
    meant: frozenset[Acl],
    present: Iterable[Acl],
    namespace: Namespace,
    also_managed: Callable[[Acl], bool] | None = None,
) -> Plan:
    """What to change on the broker so that it holds exactly ``meant`` on the managed resources
    (those of :func:`managed`, and those ``also_managed`` says, the topic grants')."""
    held = frozenset(present)
    return Plan(
        add=tuple(sorted(meant - held)),
        remove=tuple(
            sorted(
                a
                for a in held - meant
                if managed(a, namespace) or (also_managed is not None and also_managed(a))
            )
        ),
    )


def granting(grant: Grant, namespace: Namespace) -> Plan:
    """The ACLs to add for a new grant (adding one the broker holds already changes nothing)."""
    return Plan(add=tuple(sorted(acls_of([grant], namespace))), remove=())


def revoking(grant: Grant, remaining: Iterable[Grant], namespace: Namespace) -> Plan:
    """The ACLs to remove for a revoked grant: its own, unless a remaining grant means one too."""
    return Plan(add=(), remove=tuple(sorted(acls_of([grant], namespace) - acls_of(remaining, namespace))))
