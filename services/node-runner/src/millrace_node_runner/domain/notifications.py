"""Notifications that arrive: what a task or an approval notification becomes (one message per channel
and recipient, with its subject, body and link), the Slack-compatible chat payload, and what an
attempt's outcome does to a notification (delivered, failing with the next attempt's time, or given
up). Pure: the clock is passed in."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

CHAT_RECIPIENT = "chat"
"""The recipient of a chat message: the tenant's channel, not a person."""


class Status(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILING = "failing"
    GIVEN_UP = "given_up"


class Channel(StrEnum):
    EMAIL = "email"
    CHAT = "chat"


TlsMode = Literal["none", "starttls", "tls"]


@dataclass(frozen=True)
class ChannelSettings:
    """What a tenant turned on (``tenant_notification_settings``); secrets are not part of it."""

    email_enabled: bool
    chat_enabled: bool


@dataclass(frozen=True)
class Source:
    """A task (``task_notify``) or an approval notification (requested, reassigned, escalated)."""

    kind: Literal["task", "approval"]
    source_id: str
    tenant_id: str
    reason: str
    title: str
    message: str
    assignee_user: str | None
    assignee_role: str | None
    link: str


@dataclass(frozen=True)
class Planned:
    channel: Channel
    recipient: str
    subject: str
    body: str
    link: str
    status: Status
    last_error: str | None


_REASONS = {
    "task": "New task",
    "requested": "Approval requested",
    "reassigned": "Approval reassigned to you",
    "escalated": "Approval escalated",
}


def subject_of(source: Source) -> str:
    return f"{_REASONS.get(source.reason, 'Notification')}: {source.title}"[:300]


def body_of(source: Source, assignee: str) -> str:
    lines = [subject_of(source), f"Assigned to: {assignee}", ""]
    if source.message:
        lines += [source.message, ""]
    lines.append(f"Open it: {source.link}")
    return "\n".join(lines)


def assignee_label(source: Source, addresses: list[str] | None = None) -> str:
    """The user's address where it is known (an assignee may be named by user id), else as named."""
    if source.assignee_user:
        return addresses[0].lower() if addresses and len(addresses) == 1 else source.assignee_user
    return f"role {source.assignee_role or 'admin'}"


def plan(source: Source, settings: ChannelSettings, addresses: list[str]) -> list[Planned]:
    """One email per address the assignee comes to (a user, or every user of a role) and one chat
    message. An assignee without any address is recorded as given up with the reason, so every source
    leaves at least one row when a channel is on and is not looked at again."""
    subject, body = subject_of(source), body_of(source, assignee_label(source, addresses))
    planned: list[Planned] = []
    if settings.email_enabled:
        for address in sorted({a.lower() for a in addresses}):
            planned.append(Planned(Channel.EMAIL, address, subject, body, source.link, Status.PENDING, None))
        if not addresses:
            reason = f"no email address for {assignee_label(source)}: no such active user in the tenant"
            planned.append(
                Planned(
                    Channel.EMAIL, assignee_label(source), subject, body, source.link, Status.GIVEN_UP, reason
                )
            )
    if settings.chat_enabled:
        planned.append(
            Planned(Channel.CHAT, CHAT_RECIPIENT, subject, body, source.link, Status.PENDING, None)
        )
    return planned


def chat_payload(body: str) -> bytes:
    """Slack-compatible incoming-webhook JSON, ``{"text": ...}`` (Mattermost's and Rocket.Chat's
    incoming webhooks take the same)."""
    return json.dumps({"text": body}).encode()


@dataclass(frozen=True)
class Retry:
    base_seconds: float
    max_seconds: float
    max_attempts: int

    def wait(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: base, doubled each time, at most max."""
        exponent = min(max(attempts - 1, 0), 40)
        return timedelta(seconds=min(self.max_seconds, self.base_seconds * 2**exponent))


@dataclass(frozen=True)
class Settled:
    """A notification after one attempt."""

    status: Status
    next_attempt_at: datetime | None
    last_error: str | None
    delivered_at: datetime | None


def after_attempt(attempts: int, error: str | None, retry: Retry, now: datetime) -> Settled:
    """``attempts`` counts this one; ``error`` is None when it was delivered."""
    if error is None:
        return Settled(Status.DELIVERED, None, None, now)
    if attempts >= retry.max_attempts:
        return Settled(Status.GIVEN_UP, None, error[:2000], None)
    return Settled(Status.FAILING, now + retry.wait(attempts), error[:2000], None)
