"""Notifications in PostgreSQL: the tasks and approval notifications not yet planned (of tenants whose
channels are on), the assignees' addresses, the planned rows, the claim of due ones (``for update skip
locked``, then a lease: another instance skips a row while it is locked and while its lease runs), and
each attempt's outcome with its row in ``notification_attempts``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid4

from millrace_common.platform.human_tables import notification_attempts, notifications
from millrace_common.platform.tables import users
from sqlalchemy import Row, and_, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from millrace_node_runner.domain.notifications import ChannelSettings, Planned, Settled, Source, Status

_SOURCES = text(
    """
    select 'task' as kind, t.id::text as source_id, t.tenant_id, 'task' as reason, t.title,
           t.message, t.assignee_user, t.assignee_role, t.run_id::text as run_id, null as approval_id,
           t.created_at, s.email_enabled, s.chat_enabled
      from tasks t
      join tenant_notification_settings s on s.tenant_id = t.tenant_id
     where t.created_at >= greatest(s.created_at, :since) and (s.email_enabled or s.chat_enabled)
       and not exists (select 1 from notifications n where n.source = 'task' and n.source_id = t.id::text)
    union all
    select 'approval', an.id::text, an.tenant_id, an.reason, a.title, a.description,
           an.assignee_user, an.assignee_role, a.run_id::text, a.id::text,
           an.created_at, s.email_enabled, s.chat_enabled
      from approval_notifications an
      join approvals a on a.id = an.approval_id
      join tenant_notification_settings s on s.tenant_id = an.tenant_id
     where an.created_at >= greatest(s.created_at, :since) and (s.email_enabled or s.chat_enabled)
       and not exists (
           select 1 from notifications n where n.source = 'approval' and n.source_id = an.id::text)
     order by created_at
     limit :batch
    """
)

_CLAIM = text(
    """
    with due as (
        select id from notifications
         where status in ('pending', 'failing') and next_attempt_at <= :now
         order by next_attempt_at
         limit :batch
         for update skip locked)
    update notifications n
       set attempts = n.attempts + 1, next_attempt_at = :lease_until, updated_at = :now
      from due
     where n.id = due.id
    returning n.id, n.tenant_id, n.channel, n.recipient, n.subject, n.body, n.link, n.attempts
    """
)


@dataclass(frozen=True)
class NewSource:
    source: Source
    channels: ChannelSettings


@dataclass(frozen=True)
class Claimed:
    id: UUID
    tenant_id: str
    channel: str
    recipient: str
    subject: str
    body: str
    link: str | None
    attempt: int


async def new_sources(
    connection: AsyncConnection, *, since: datetime, batch: int, links: LinkBases
) -> list[NewSource]:
    rows = await connection.execute(_SOURCES, {"since": since, "batch": batch})
    return [
        NewSource(_source(row, links), ChannelSettings(row.email_enabled, row.chat_enabled)) for row in rows
    ]


@dataclass(frozen=True)
class LinkBases:
    web_app: str
    approval_inbox: str


def _source(row: Row, links: LinkBases) -> Source:
    if row.kind == "task":
        link = f"{links.web_app.rstrip('/')}/runs/{row.run_id}" if row.run_id else links.web_app
    else:
        link = f"{links.approval_inbox.rstrip('/')}/approvals/{row.approval_id}"
    return Source(
        kind=row.kind,
        source_id=row.source_id,
        tenant_id=row.tenant_id,
        reason=row.reason,
        title=row.title,
        message=row.message or "",
        assignee_user=row.assignee_user,
        assignee_role=row.assignee_role,
        link=link,
    )


async def addresses(connection: AsyncConnection, source: Source) -> list[str]:
    """The active users' addresses: the user named by id or email, or every user of the role (the
    ``admin`` role when neither is named, as the tasks API reads it)."""
    active = and_(users.c.tenant_id == source.tenant_id, users.c.disabled.is_(False))
    if source.assignee_user:
        matches = [func.lower(users.c.email) == source.assignee_user.lower()]
        try:
            matches.append(users.c.id == UUID(source.assignee_user))
        except ValueError:
            pass
        query = select(users.c.email).where(active, or_(*matches))
    else:
        query = select(users.c.email).where(active, users.c.roles.any(source.assignee_role or "admin"))
    return [row.email for row in await connection.execute(query)]


async def insert_planned(
    connection: AsyncConnection, source: Source, planned: Sequence[Planned], now: datetime
) -> None:
    if not planned:
        return
    await connection.execute(
        pg_insert(notifications)
        .values(
            [
                {
                    "id": uuid4(),
                    "tenant_id": source.tenant_id,
                    "source": source.kind,
                    "source_id": source.source_id,
                    "reason": source.reason,
                    "channel": p.channel.value,
                    "recipient": p.recipient,
                    "subject": p.subject,
                    "body": p.body,
                    "link": p.link,
                    "status": p.status.value,
                    "attempts": 0,
                    "last_error": p.last_error,
                    "next_attempt_at": now if p.status is Status.PENDING else None,
                    "created_at": now,
                    "updated_at": now,
                }
                for p in planned
            ]
        )
        .on_conflict_do_nothing()
    )


async def claim(
    connection: AsyncConnection, *, now: datetime, lease_until: datetime, batch: int
) -> list[Claimed]:
    rows = await connection.execute(_CLAIM, {"now": now, "lease_until": lease_until, "batch": batch})
    return [
        Claimed(r.id, r.tenant_id, r.channel, r.recipient, r.subject, r.body, r.link, r.attempts)
        for r in rows
    ]


async def settle(
    connection: AsyncConnection, claimed: Claimed, settled: Settled, error: str | None, now: datetime
) -> None:
    """Written only while the row is still at this attempt: an instance whose lease ran out and whose
    row another instance claimed again does not overwrite the newer attempt's state."""
    await connection.execute(
        update(notifications)
        .where(notifications.c.id == claimed.id, notifications.c.attempts == claimed.attempt)
        .values(
            status=settled.status.value,
            next_attempt_at=settled.next_attempt_at,
            last_error=settled.last_error,
            delivered_at=settled.delivered_at,
            updated_at=now,
        )
    )
    await connection.execute(
        pg_insert(notification_attempts)
        .values(
            notification_id=claimed.id,
            attempt=claimed.attempt,
            at=now,
            outcome="delivered" if error is None else "failed",
            error=None if error is None else error[:2000],
        )
        .on_conflict_do_nothing()
    )
