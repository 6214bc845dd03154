"""Notification use cases: the tenant's channels (its SMTP server, with a login from a ``basic``
credential named here, and its chat incoming-webhook URL, sealed before it is stored and never given
back), the notifications the node runner delivers, one with its attempts, and a retry of one given
up. The node runner does the delivering; nothing here sends."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.platform.refusals import FieldProblem
from millrace_common.platform.secrets import SecretBox
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import credentials
from millrace_gateway.adapters import notifications as store
from millrace_gateway.domain.refusals import InvalidSettings, NotFound, WrongState


@dataclass(frozen=True)
class EmailChannel:
    enabled: bool
    smtp_host: str | None
    smtp_port: int
    tls: str
    from_address: str | None
    credential: str | None


@dataclass(frozen=True)
class ChatChannel:
    enabled: bool
    webhook_url: str | None
    """None keeps the stored URL."""


@dataclass(frozen=True)
class ChannelSettings:
    email: EmailChannel
    chat_enabled: bool
    has_webhook_url: bool
    updated_at: datetime | None


@dataclass(frozen=True)
class Page:
    items: Sequence[Row]
    next_cursor: str | None


DEFAULT = ChannelSettings(EmailChannel(False, None, 587, "starttls", None, None), False, False, None)


class NotificationDesk:
    def __init__(self, engine: AsyncEngine, box: SecretBox) -> None:
        self._engine = engine
        self._box = box

    async def settings(self, tenant_id: str) -> ChannelSettings:
        async with self._engine.connect() as connection:
            row = await store.settings(connection, tenant_id)
        if row is None:
            return DEFAULT
        email = EmailChannel(
            row.email_enabled,
            row.smtp_host,
            row.smtp_port or 25,
            row.smtp_tls,
            row.smtp_from,
            row.smtp_credential,
        )
        return ChannelSettings(
            email, row.chat_enabled, row.chat_webhook_ciphertext is not None, row.updated_at
        )

    async def put_settings(self, tenant_id: str, email: EmailChannel, chat: ChatChannel) -> ChannelSettings:
        if email.enabled and not (email.smtp_host and email.from_address):
            missing = "/body/email/smtp_host" if not email.smtp_host else "/body/email/from_address"
            raise InvalidSettings(
                "email notifications need an SMTP host and a from address",
                FieldProblem(missing, "required when enabled"),
            )
        values: dict[str, object] = {
            "email_enabled": email.enabled,
            "smtp_host": email.smtp_host,
            "smtp_port": email.smtp_port,
            "smtp_tls": email.tls,
            "smtp_from": email.from_address,
            "smtp_credential": email.credential,
            "chat_enabled": chat.enabled,
        }
        if chat.webhook_url is not None:
            values["chat_webhook_ciphertext"] = self._box.seal(chat.webhook_url)
        async with self._engine.begin() as connection:
            if email.credential is not None:
                found = await credentials.credential(connection, tenant_id, email.credential)
                if found is None or found.kind != "basic":
                    why = (
                        "no such credential"
                        if found is None
                        else f"a {found.kind} credential; a basic one is needed"
                    )
                    raise InvalidSettings(
                        f"the SMTP login must name a basic credential: {why}",
                        FieldProblem("/body/email/credential", why),
                    )
            stored = await store.settings(connection, tenant_id)
            has_url = chat.webhook_url is not None or (
                stored is not None and stored.chat_webhook_ciphertext is not None
            )
            if chat.enabled and not has_url:
                raise InvalidSettings(
                    "chat notifications need a webhook URL",
                    FieldProblem("/body/chat/webhook_url", "required when enabled"),
                )
            await store.put_settings(connection, tenant_id, values, utc_now())
        return await self.settings(tenant_id)

    async def page(
        self, tenant_id: str, *, status: str | None, channel: str | None, cursor: str | None, limit: int
    ) -> Page:
        after = _decode(cursor) if cursor is not None else None
        async with self._engine.connect() as connection:
            rows = await store.page(
                connection, tenant_id, status=status, channel=channel, after=after, limit=limit + 1
            )
        items = rows[:limit]
        next_cursor = _encode(items[-1].created_at, items[-1].id) if len(rows) > limit else None
        return Page(items, next_cursor)

    async def one(self, tenant_id: str, notification_id: UUID) -> tuple[Row, Sequence[Row]]:
        async with self._engine.connect() as connection:
            row = await store.one(connection, tenant_id, notification_id)
            if row is None:
                raise NotFound("notification")
            return row, await store.attempts(connection, notification_id)

    async def retry(self, tenant_id: str, notification_id: UUID) -> tuple[Row, Sequence[Row]]:
        async with self._engine.begin() as connection:
            if not await store.retry(connection, tenant_id, notification_id, utc_now()):
                row = await store.one(connection, tenant_id, notification_id)
                if row is None:
                    raise NotFound("notification")
                raise WrongState(f"only a given-up notification can be retried; this one is {row.status}")
        return await self.one(tenant_id, notification_id)


def _encode(created_at: datetime, notification_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{notification_id}".encode()).decode()


def _decode(cursor: str) -> tuple[datetime, UUID]:
    try:
        created, _, ident = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(created), UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidSettings(
            "the cursor is not one this API gave", FieldProblem("/query/cursor", "not a cursor of this list")
        ) from error
