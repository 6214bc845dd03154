"""``millrace-admin dlq``: the dead letters of every tenant, as a platform operator sees them.

millrace-admin dlq list [--topic records.events] [--tenant acme] [--reason "permission denied"]
                        [--cause failed] [--state pending] [--since 2026-12-01] [--until ...] [--json]
millrace-admin dlq show 42                  (the original message, its headers, the reason)
millrace-admin dlq replay 42 [--by name]    (sends the original message back to its topic, once)
millrace-admin dlq discard 42 [--by name]

It works on the gateway's index (``dead_letters``) and, to replay, Kafka, with the gateway's settings
(MILLRACE_DATABASE_URL, MILLRACE_KAFKA_BOOTSTRAP, MILLRACE_NAMESPACE). A refusal (not found, replayed
already) is said on stderr and exits 1."""

from __future__ import annotations

import argparse
import asyncio
import base64
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from millrace_common.contracts.messages.envelope import DeadLetterCause
from millrace_common.contracts.topics import dead_letter_topics, source_of
from millrace_common.platform.db import create_engine
from millrace_common.platform.environment import load_settings
from millrace_common.platform.refusals import Refused
from sqlalchemy import Row

from millrace_gateway.adapters.replays import ReplayPublisher
from millrace_gateway.domain.dead_letters import DeadLetterState, preview
from millrace_gateway.service_layer.dead_letters import DeadLetterDesk, Filters
from millrace_gateway.settings import GatewaySettings

T = TypeVar("T")
TOPICS = sorted(source_of(t).name for t in dead_letter_topics())
SHOWN = ("id", "state", "topic", "tenant_id", "cause", "dead_lettered_at", "reason")


def add_commands(commands: Any) -> None:
    """The ``dlq`` command and its subcommands, on ``millrace-admin``'s parser."""
    dlq = commands.add_parser("dlq", help="list, show, replay or discard dead letters (every tenant's)")
    actions = dlq.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--topic", choices=TOPICS, help="the original topic")
    listing.add_argument("--tenant", help="the tenant the message names")
    listing.add_argument("--reason", help="part of the reason (any case)")
    listing.add_argument("--cause", choices=[c.value for c in DeadLetterCause])
    listing.add_argument("--state", choices=[s.value for s in DeadLetterState])
    listing.add_argument("--since", type=datetime.fromisoformat, help="ISO time, e.g. 2026-12-01T08:00+00:00")
    listing.add_argument("--until", type=datetime.fromisoformat)
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true", help="one JSON object per line")
    for name, text in (
        ("show", "one dead letter in full"),
        ("replay", "send it back, once"),
        ("discard", "set it aside"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("id", type=int)
        if name != "show":
            action.add_argument(
                "--by", default=f"millrace-admin:{getpass.getuser()}", help="who, for the record"
            )


def run(args: argparse.Namespace) -> None:
    settings = load_settings(GatewaySettings, "millrace-admin")
    try:
        asyncio.run(_with_desk(settings, lambda desk: _act(desk, args)))
    except Refused as refusal:
        print(f"millrace-admin: {refusal.detail}", file=sys.stderr)
        raise SystemExit(1) from refusal


async def _act(desk: DeadLetterDesk, args: argparse.Namespace) -> None:
    if args.action == "list":
        filters = Filters(
            args.topic, args.tenant, args.cause, args.reason, args.state, args.since, args.until
        )
        page = await desk.page(None, filters, limit=args.limit, offset=0)
        if args.json:
            for row in page.items:
                print(json.dumps({name: _plain(getattr(row, name)) for name in row._fields}))
            return
        print("\t".join(SHOWN))
        for row in page.items:
            print("\t".join(str(_plain(getattr(row, name)) or "-")[:120] for name in SHOWN))
        return
    if args.action == "show":
        print(json.dumps(_full(await desk.get(None, args.id)), indent=2))
    elif args.action == "replay":
        row = await desk.replay(None, args.id, by=args.by)
        print(f"dead letter {row.id} {row.state}: sent back to {row.topic}", file=sys.stderr)
    else:
        row = await desk.discard(None, args.id, by=args.by)
        print(f"dead letter {row.id} {row.state}", file=sys.stderr)


def _full(row: Row) -> dict[str, object]:
    kind, value = preview(bytes(row.value))
    shown = {name: _plain(getattr(row, name)) for name in row._fields if name != "value"}
    return {
        **shown,
        "value_kind": kind,
        "value": value,
        "value_base64": base64.b64encode(bytes(row.value)).decode(),
    }


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


async def _with_desk(settings: GatewaySettings, act: Callable[[DeadLetterDesk], Awaitable[T]]) -> T:
    engine = create_engine(settings)
    publisher = ReplayPublisher(settings)
    try:
        return await act(DeadLetterDesk(engine, publisher))
    finally:
        await publisher.close()
        await engine.dispose()
