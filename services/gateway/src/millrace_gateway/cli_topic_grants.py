"""``millrace-admin grants add-topic|revoke-topic|topics``: the outside Kafka topics a tenant's Kafka
triggers may read (``consume``) and its publish nodes may write (``produce``).

millrace-admin grants add-topic --tenant acme --topic orders --access consume [--by name]
millrace-admin grants revoke-topic --tenant acme --topic orders --access consume
millrace-admin grants topics [--tenant acme] [--topic orders] [--json]

The grants are rows in PostgreSQL, which the services check; each command applies them to the broker
as ACLs of the services' principal (``docs/triggers.md``), as ``grants add`` does for producers: a
refusal exits 1, a grant recorded but not applied exits 2 (``grants sync`` applies it later)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from millrace_common.contracts.topics import Namespace
from millrace_common.platform.db import create_engine

from millrace_gateway.adapters.kafka_tools import KafkaTools
from millrace_gateway.domain.topic_grants import TopicAccess, TopicGrant, services_principal
from millrace_gateway.service_layer.topic_grants import TopicApplied, TopicGrantDesk
from millrace_gateway.settings import GatewaySettings

T = TypeVar("T")
NOT_APPLIED = 2
ACTIONS = ("add-topic", "revoke-topic", "topics")


def add_actions(actions: Any) -> None:
    """The topic-grant actions, on ``grants``' sub-parsers."""
    for name, text in (
        ("add-topic", "grant a tenant a topic, and apply"),
        ("revoke-topic", "revoke, and apply"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("--tenant", required=True)
        action.add_argument("--topic", required=True)
        action.add_argument("--access", required=True, choices=[a.value for a in TopicAccess])
        if name == "add-topic":
            action.add_argument(
                "--by", default=f"millrace-admin:{getpass.getuser()}", help="who, for the record"
            )
    listing = actions.add_parser("topics", help="the topic grants")
    listing.add_argument("--tenant")
    listing.add_argument("--topic")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")


def run(args: argparse.Namespace, settings: GatewaySettings) -> None:
    """Raises ``Refused`` (exit 1, said by the caller) for a refusal."""
    if args.action == "topics":
        rows = _with_desk(settings, lambda desk: desk.listed(tenant_id=args.tenant, topic=args.topic))
        shown = ("tenant_id", "topic", "access", "created_by", "created_at")
        if not args.json:
            print("\t".join(shown))
        for row in rows:
            values = {name: str(getattr(row, name)) for name in shown}
            print(json.dumps(values) if args.json else "\t".join(values[name] for name in shown))
        return
    grant = TopicGrant(args.tenant, args.topic, TopicAccess(args.access))
    if args.action == "add-topic":
        applied = _with_desk(settings, lambda desk: desk.add(grant, by=args.by, pointer="--topic"))
    else:
        applied = _with_desk(settings, lambda desk: desk.revoke(grant))
    _say(applied)


def _say(applied: TopicApplied) -> None:
    verb = ("added", "removed") if applied.applied else ("to add", "to remove")
    for acls, said in ((applied.plan.add, verb[0]), (applied.plan.remove, verb[1])):
        for acl in acls:
            print(
                f"{said}\t{acl.principal}\t{acl.operation}\t{acl.resource_type}:{acl.pattern_type}:{acl.name}"
            )
    if not applied.applied:
        print(
            f"millrace-admin: the grant is recorded, its ACLs are not applied ({applied.error}); "
            "'millrace-admin grants sync' applies them once that is fixed",
            file=sys.stderr,
        )
        raise SystemExit(NOT_APPLIED)


def _with_desk(settings: GatewaySettings, act: Callable[[TopicGrantDesk], Awaitable[T]]) -> T:
    async def go() -> T:
        engine = create_engine(settings)
        try:
            desk = TopicGrantDesk(
                engine,
                KafkaTools(settings),
                Namespace(settings.namespace),
                services_principal=services_principal(settings.kafka_sasl_username),
                apply_acls=True,
            )
            return await act(desk)
        finally:
            await engine.dispose()

    return asyncio.run(go())
