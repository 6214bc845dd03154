"""``millrace-admin``: operator commands, such as creating the first tenant and its admin.

    millrace-admin create-tenant acme --name "Acme Inc." --admin-email admin@acme.test
    (the password is read from MILLRACE_ADMIN_PASSWORD, or asked for on a terminal)
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys

from pydantic import TypeAdapter, ValidationError

from millrace_common.db import create_engine
from millrace_common.messages.envelope import TenantId

from millrace_gateway.adapters.security import Passwords
from millrace_gateway.settings import GatewaySettings
from millrace_gateway.tenancy import TenantExists, create_tenant


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="millrace-admin", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create-tenant", help="create a tenant and its first admin user")
    create.add_argument("tenant_id")
    create.add_argument("--name")
    create.add_argument("--admin-email", required=True)
    args = parser.parse_args(argv)

    try:
        tenant_id = TypeAdapter(TenantId).validate_python(args.tenant_id)
    except ValidationError:
        parser.error("tenant id: 1-64 characters of letters, digits, '_', '.', ':' or '-'")
    password = os.environ.get("MILLRACE_ADMIN_PASSWORD") or getpass.getpass("admin password: ")
    if len(password) < 10:
        parser.error("the admin password needs at least 10 characters")
    settings = GatewaySettings()

    async def run() -> None:
        engine = create_engine(settings)
        try:
            await create_tenant(engine, Passwords(), tenant_id, args.name or tenant_id, args.admin_email, password)
        finally:
            await engine.dispose()

    try:
        asyncio.run(run())
    except TenantExists as error:
        print(f"millrace-admin: {error}", file=sys.stderr)
        raise SystemExit(1) from error
    print(f"tenant {tenant_id!r} created with admin {args.admin_email}", file=sys.stderr)
