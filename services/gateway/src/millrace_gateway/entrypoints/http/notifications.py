"""Notifications: the tenant's channels (``/settings/notifications``: SMTP and chat webhook), what was
sent to whom and whether it arrived (``/notifications``), and a retry of one given up. Admins only:
the list shows the users' addresses and the messages. Another tenant's notification is 404."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from millrace_common.platform.problems import declared
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Row

from millrace_gateway.entrypoints.http.deps import NotificationsDep, TenantAdmin
from millrace_gateway.service_layer.notifications import ChannelSettings, ChatChannel, EmailChannel

router = APIRouter(prefix="/api/v1", tags=["notifications"])

Status = Literal["pending", "delivered", "failing", "given_up"]
ChannelName = Literal["email", "chat"]


class EmailSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    smtp_host: str | None = Field(
        default=None, min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.:\[\]-]+$"
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    tls: Literal["none", "starttls", "tls"] = Field(
        default="starttls",
        description="none: plain; starttls: upgrade after connecting; tls: TLS from the start",
    )
    from_address: str | None = Field(default=None, min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    credential: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The name of a basic credential holding the SMTP login; none for a server without one",
    )


class ChatSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    webhook_url: str | None = Field(
        default=None,
        min_length=8,
        max_length=2000,
        pattern=r"^https?://",
        description="A Slack-compatible incoming-webhook URL (it is the secret: encrypted, never returned); "
        "omit to keep the stored one",
    )


class SettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailSettings = Field(default_factory=EmailSettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)


class EmailSettingsOut(BaseModel):
    enabled: bool
    smtp_host: str | None
    smtp_port: int
    tls: str
    from_address: str | None
    credential: str | None


class ChatSettingsOut(BaseModel):
    enabled: bool
    has_webhook_url: bool


class SettingsOut(BaseModel):
    email: EmailSettingsOut
    chat: ChatSettingsOut
    updated_at: datetime | None


class NotificationOut(BaseModel):
    id: UUID
    source: str = Field(
        description="task (a task_notify node) or approval (requested, reassigned, escalated)"
    )
    source_id: str
    reason: str
    channel: str
    recipient: str
    subject: str
    body: str
    link: str | None
    status: str
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    outcome: str
    error: str | None


class NotificationDetail(NotificationOut):
    attempt_log: list[AttemptOut]


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None


@router.get("/settings/notifications", response_model=SettingsOut)
async def get_settings(admin: TenantAdmin, desk: NotificationsDep) -> SettingsOut:
    """The tenant's channels; both off until set."""
    return _settings(await desk.settings(admin.tenant_id))


@router.put(
    "/settings/notifications",
    response_model=SettingsOut,
    responses=declared(
        unprocessable_entity="a channel on without what it needs, or no such basic credential"
    ),
)
async def put_settings(body: SettingsBody, admin: TenantAdmin, desk: NotificationsDep) -> SettingsOut:
    email = EmailChannel(
        body.email.enabled,
        body.email.smtp_host,
        body.email.smtp_port,
        body.email.tls,
        body.email.from_address,
        body.email.credential,
    )
    chat = ChatChannel(body.chat.enabled, body.chat.webhook_url)
    return _settings(await desk.put_settings(admin.tenant_id, email, chat))


@router.get(
    "/notifications",
    response_model=NotificationPage,
    responses=declared(unprocessable_entity="a cursor this list did not give"),
)
async def list_notifications(
    admin: TenantAdmin,
    desk: NotificationsDep,
    status: Status | None = None,
    channel: ChannelName | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> NotificationPage:
    """Newest first; ``next_cursor`` gives the next page."""
    page = await desk.page(admin.tenant_id, status=status, channel=channel, cursor=cursor, limit=limit)
    return NotificationPage(items=[_out(row) for row in page.items], next_cursor=page.next_cursor)


@router.get(
    "/notifications/{notification_id}",
    response_model=NotificationDetail,
    responses=declared(not_found="no such notification in the tenant"),
)
async def get_notification(
    notification_id: UUID, admin: TenantAdmin, desk: NotificationsDep
) -> NotificationDetail:
    """One notification with every attempt made."""
    return _detail(*await desk.one(admin.tenant_id, notification_id))


@router.post(
    "/notifications/{notification_id}/retry",
    response_model=NotificationDetail,
    responses=declared(not_found="no such notification in the tenant", conflict="it is not given up"),
)
async def retry_notification(
    notification_id: UUID, admin: TenantAdmin, desk: NotificationsDep
) -> NotificationDetail:
    """A given-up notification is due again at once: one more attempt (its count goes on, so a failure
    gives it up again)."""
    return _detail(*await desk.retry(admin.tenant_id, notification_id))


def _settings(settings: ChannelSettings) -> SettingsOut:
    email = settings.email
    return SettingsOut(
        email=EmailSettingsOut(
            enabled=email.enabled,
            smtp_host=email.smtp_host,
            smtp_port=email.smtp_port,
            tls=email.tls,
            from_address=email.from_address,
            credential=email.credential,
        ),
        chat=ChatSettingsOut(enabled=settings.chat_enabled, has_webhook_url=settings.has_webhook_url),
        updated_at=settings.updated_at,
    )


def _out(row: Row) -> NotificationOut:
    return NotificationOut.model_validate(row, from_attributes=True)


def _detail(row: Row, attempts: list[Row] | tuple[Row, ...] | object) -> NotificationDetail:
    log = [AttemptOut.model_validate(a, from_attributes=True) for a in attempts]  # type: ignore[attr-defined]
    return NotificationDetail(**_out(row).model_dump(), attempt_log=log)
