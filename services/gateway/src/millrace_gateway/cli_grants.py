"""``millrace-admin grants`` and ``millrace-admin producers``: tenant-bound Kafka producers.

millrace-admin producers create --tenant acme [--user crm-acme]
    a SCRAM-SHA-512 user for an outside producer, granted acme's record ingress: prints the user, its
    password (MILLRACE_PRODUCER_PASSWORD, or generated) and the topic it writes
millrace-admin grants add --principal crm-acme --tenant acme [--kind records-ingress] [--by name]
millrace-admin grants revoke --principal crm-acme --tenant acme [--kind records-ingress]
millrace-admin grants list [--principal crm-acme] [--tenant acme] [--json]
millrace-admin grants sync [--dry-run]     (the broker's ACLs brought in line with the grants)
millrace-admin grants add-topic|revoke-topic|topics ...   (topic grants: ``cli_topic_grants``)

Grants are rows in PostgreSQL; each command applies them to the broker as ACLs with Kafka's own tools
(MILLRACE_KAFKA_TOOLS_CLASSPATH), connecting with the gateway's settings (MILLRACE_DATABASE_URL,
MILLRACE_KAFKA_*, MILLRACE_NAMESPACE). A refusal is said on stderr and exits 1; a grant recorded but not
applied (the broker refused or was away) exits 2 and is applied by the next ``grants sync``."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from millrace_common.contracts.messages.envelope import TenantId
from millrace_common.contracts.topics import RECORDS_INGRESS, Namespace
from millrace_common.platform.db import create_engine
from millrace_common.platform.refusals import Refused
from millrace_common.platform.topic_admin import ensure_tenant_topic
from pydantic import TypeAdapter, ValidationError

from millrace_gateway import cli_topic_grants
from millrace_gateway.adapters.kafka_tools import KafkaToolFailed, KafkaTools
from millrace_gateway.domain.grants import BadPrincipal, Grant, GrantKind, Plan, principal_of
from millrace_gateway.domain.topic_grants import services_principal
from millrace_gateway.service_layer.grants import Applied, GrantDesk
from millrace_gateway.settings import GatewaySettings

T = TypeVar("T")
NOT_APPLIED = 2


def add_commands(commands: Any) -> None:
    """The ``grants`` and ``producers`` commands, on ``millrace-admin``'s parser."""
    grants = commands.add_parser("grants", help="which Kafka principal may write which tenant's events")
    actions = grants.add_subparsers(dest="action", required=True)
    for name, text in (("add", "grant, and apply it to the broker"), ("revoke", "revoke, and apply")):
        action = actions.add_parser(name, help=text)
        action.add_argument("--principal", required=True, help="the producer's user name (or User:<name>)")
        action.add_argument("--tenant", required=True)
        action.add_argument("--kind", choices=[k.value for k in GrantKind], default=GrantKind.RECORDS_INGRESS)
        if name == "add":
            action.add_argument(
                "--by", default=f"millrace-admin:{getpass.getuser()}", help="who, for the record"
            )
    listing = actions.add_parser("list", help="the grants")
    listing.add_argument("--principal")
    listing.add_argument("--tenant")
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    cli_topic_grants.add_actions(actions)
    sync = actions.add_parser("sync", help="bring the broker's ACLs in line with the grants")
    sync.add_argument("--dry-run", action="store_true", help="only say what would change")
    producers = commands.add_parser("producers", help="SCRAM users for outside producers")
    producer_actions = producers.add_subparsers(dest="action", required=True)
    create = producer_actions.add_parser("create", help="a SCRAM-SHA-512 user granted one tenant's ingress")
    create.add_argument("--tenant", required=True)
    create.add_argument("--user", help="its user name (default: producer-<tenant>)")
    create.add_argument("--by", default=f"millrace-admin:{getpass.getuser()}", help="who, for the record")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    settings = GatewaySettings()
    try:
        if args.command == "producers":
            _create_producer(parser, settings, args)
        elif args.action in cli_topic_grants.ACTIONS:
            cli_topic_grants.run(args, settings)
        elif args.action == "list":
            rows = _with_desk(settings, lambda desk: desk.listed(**_filters(parser, args)))
            _print_rows(rows, as_json=args.json)
        elif args.action == "sync":
            steps = _with_desk(settings, lambda desk: desk.sync(dry_run=args.dry_run))
            _say_plan(steps, done=not args.dry_run)
        else:
            grant = Grant(
                _principal(parser, args.principal), _tenant(parser, args.tenant), GrantKind(args.kind)
            )
            if args.action == "add":
                applied = _with_desk(settings, lambda desk: desk.add(grant, by=args.by))
            else:
                applied = _with_desk(settings, lambda desk: desk.revoke(grant))
            _say_applied(applied)
    except Refused as refusal:
        print(f"millrace-admin: {refusal.detail}", file=sys.stderr)
        raise SystemExit(1) from refusal
    except (KafkaToolFailed, KafkaError, OSError) as error:
        print(
            f"millrace-admin: the broker refused or was away ({error}); the grants PostgreSQL holds are"
            " applied by 'millrace-admin grants sync' once that is fixed",
            file=sys.stderr,
        )
        raise SystemExit(NOT_APPLIED) from error


def _create_producer(
    parser: argparse.ArgumentParser, settings: GatewaySettings, args: argparse.Namespace
) -> None:
    tenant_id = _tenant(parser, args.tenant)
    user = (args.user or f"producer-{tenant_id}").removeprefix("User:")
    principal_of_user = _principal(parser, user)
    password = os.environ.get("MILLRACE_PRODUCER_PASSWORD") or secrets.token_urlsafe(24)
    if len(password) < 16 or set(password) & set(",[]= "):
        parser.error("MILLRACE_PRODUCER_PASSWORD: at least 16 characters, none of ',', '[', ']', '=', ' '")
    applied = _with_desk(settings, lambda desk: desk.create_producer(user, password, tenant_id, by=args.by))
    _say_applied(applied)
    namespace = Namespace(settings.namespace)
    print(f"principal\t{principal_of_user}")
    print("mechanism\tSCRAM-SHA-512")
    print(f"user\t{user}")
    print(f"password\t{password}")
    print(f"topic\t{namespace.tenant_topic(RECORDS_INGRESS, tenant_id)}")


def _principal(parser: argparse.ArgumentParser, name: str) -> str:
    try:
        return principal_of(name)
    except BadPrincipal as error:
        parser.error(str(error))


def _tenant(parser: argparse.ArgumentParser, tenant_id: str) -> str:
    try:
        return TypeAdapter(TenantId).validate_python(tenant_id)
    except ValidationError:
        parser.error("tenant id: 1-64 characters of letters, digits, '_', '.', ':' or '-'")


def _filters(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str | None]:
    return {
        "principal": _principal(parser, args.principal) if args.principal else None,
        "tenant_id": args.tenant,
    }


def _print_rows(rows: list[Any], *, as_json: bool) -> None:
    shown = ("principal", "tenant_id", "kind", "created_by", "created_at")
    if not as_json:
        print("\t".join(shown))
    for row in rows:
        values = {
            name: str(getattr(row, name)) if name == "created_at" else getattr(row, name) for name in shown
        }
        print(json.dumps(values) if as_json else "\t".join(str(values[name]) for name in shown))


def _say_plan(steps: Plan, *, done: bool) -> None:
    verb = ("added", "removed") if done else ("to add", "to remove")
    for acl in steps.add:
        print(
            f"{verb[0]}\t{acl.principal}\t{acl.operation}\t{acl.resource_type}:{acl.pattern_type}:{acl.name}"
        )
    for acl in steps.remove:
        print(
            f"{verb[1]}\t{acl.principal}\t{acl.operation}\t{acl.resource_type}:{acl.pattern_type}:{acl.name}"
        )
    print(f"ACLs {verb[0]}: {len(steps.add)}, {verb[1]}: {len(steps.remove)}", file=sys.stderr)


def _say_applied(applied: Applied) -> None:
    if applied.topic_created:
        print("the tenant's ingress topic was created", file=sys.stderr)
    _say_plan(applied.plan, done=True)


def _with_desk(settings: GatewaySettings, act: Callable[[GrantDesk], Awaitable[T]]) -> T:
    namespace = Namespace(settings.namespace)

    async def make_topic(tenant_id: str) -> bool:
        return await ensure_tenant_topic(
            settings,
            namespace,
            RECORDS_INGRESS,
            tenant_id,
            max_message_bytes=settings.kafka_max_message_bytes,
        )

    async def go() -> T:
        engine = create_engine(settings)
        try:
            desk = GrantDesk(
                engine,
                KafkaTools(settings),
                namespace,
                make_topic,
                services_principal=services_principal(settings.kafka_sasl_username),
            )
            return await act(desk)
        finally:
            await engine.dispose()

    return asyncio.run(go())
