"""``millrace-admin``: operator commands, such as creating the first tenant and its admin.

millrace-admin create-tenant acme --name "Acme Inc." --admin-email admin@acme.test
(the password is read from MILLRACE_ADMIN_PASSWORD, or asked for on a terminal)
millrace-admin allow-networks acme 127.0.0.0/8     (let acme's nodes call loopback targets)
millrace-admin dlq list|show|replay|discard ...     (dead letters; millrace-admin dlq --help)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import ipaddress
import os
import sys

from millrace_common.contracts.messages.envelope import TenantId
from millrace_common.platform.db import create_engine
from millrace_common.platform.environment import load_settings
from pydantic import TypeAdapter, ValidationError

from millrace_gateway import cli_dead_letters
from millrace_gateway.adapters.security import Passwords
from millrace_gateway.service_layer.accounts import TenantExists, allow_networks, create_tenant
from millrace_gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="millrace-admin", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-tenant", help="create a tenant and its first admin user")
    create.add_argument("tenant_id")
    create.add_argument("--name")
    create.add_argument("--admin-email", required=True)
    allow = commands.add_parser(
        "allow-networks",
        help="let a tenant's HTTP, webhook and AI nodes reach these private or loopback networks",
    )
    allow.add_argument("tenant_id")
    allow.add_argument("networks", nargs="+", help="CIDR ranges, e.g. 127.0.0.0/8 ::1/128")
    cli_dead_letters.add_commands(commands)
    args = parser.parse_args(argv)
    if args.command == "dlq":
        cli_dead_letters.run(args)
        return
    if args.command == "allow-networks":
        _allow_networks(parser, args.tenant_id, args.networks)
        return

    try:
        tenant_id = TypeAdapter(TenantId).validate_python(args.tenant_id)
    except ValidationError:
        parser.error("tenant id: 1-64 characters of letters, digits, '_', '.', ':' or '-'")
    password = os.environ.get("MILLRACE_ADMIN_PASSWORD") or getpass.getpass("admin password: ")
    if len(password) < 10:
        parser.error("the admin password needs at least 10 characters")
    settings = load_settings(GatewaySettings, "millrace-admin")

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await create_tenant(
                engine, Passwords(), tenant_id, args.name or tenant_id, args.admin_email, password
            )
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except TenantExists as error:
        print(f"millrace-admin: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    print(f"tenant {tenant_id!r} created with admin {args.admin_email}", file=sys.stderr)


def _allow_networks(parser: argparse.ArgumentParser, tenant_id: str, networks: list[str]) -> None:
    try:
        ranges = sorted({str(ipaddress.ip_network(n, strict=False)) for n in networks})
    except ValueError as error:
        parser.error(f"not a network: {error}")
    settings = load_settings(GatewaySettings, "millrace-admin")

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await allow_networks(engine, tenant_id, ranges)
        finally:
            await engine.dispose()

    asyncio.run(run())
    print(f"tenant {tenant_id!r} may now reach {', '.join(ranges)}", file=sys.stderr)
