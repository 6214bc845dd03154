"""Delivering one notification: by email through the tenant's SMTP server (``aiosmtplib``), or to its
chat incoming webhook (Slack-compatible JSON through the HTTP nodes' guarded client). Both go only
where the tenant's network policy lets its nodes go: the webhook through the same guarded transport
as ``http_request``, the SMTP host judged by the addresses it resolves to before connecting. The
secrets (the SMTP login, a ``basic`` credential named in the settings, and the webhook URL, sealed in
the settings row) are opened only here, for the attempt, and never logged or recorded."""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
from millrace_common.platform.human_tables import tenant_notification_settings
from millrace_common.platform.secrets import SecretBox, SecretsUnavailable
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_node_runner.adapters.http import OutgoingRequest
from millrace_node_runner.adapters.network import Resolver
from millrace_node_runner.adapters.notification_store import Claimed
from millrace_node_runner.adapters.tenants import TenantConfig, reading
from millrace_node_runner.domain.addresses import refuse_addresses, refuse_name
from millrace_node_runner.domain.http import BasicSecret
from millrace_node_runner.domain.notifications import Channel, chat_payload
from millrace_node_runner.domain.outcomes import Failed, NodeRefused
from millrace_node_runner.service_layer.plugins import GuardedHttp

SMTP_TIMEOUT_SECONDS = 30.0
CHAT_TIMEOUT_SECONDS = 15.0


class DeliveryFailed(Exception):
    """An attempt that did not deliver; the message says why (no secret in it)."""


@dataclass(frozen=True)
class Smtp:
    host: str
    port: int
    tls: str
    sender: str
    username: str | None
    password: str | None


class Channels:
    def __init__(
        self,
        engine: AsyncEngine,
        box: SecretBox | None,
        tenants: TenantConfig,
        http: GuardedHttp,
        resolver: Resolver,
    ) -> None:
        self._engine = engine
        self._box = box
        self._tenants = tenants
        self._http = http
        self._resolver = resolver

    async def deliver(self, claimed: Claimed) -> None:
        """Raises :class:`DeliveryFailed` with the reason when the message was not accepted."""
        async with reading(self._engine) as connection:
            row = (
                await connection.execute(
                    select(tenant_notification_settings).where(
                        tenant_notification_settings.c.tenant_id == claimed.tenant_id
                    )
                )
            ).first()
        if row is None:
            raise DeliveryFailed(
                "the tenant has no notification settings (PUT /api/v1/settings/notifications)"
            )
        if claimed.channel == Channel.CHAT:
            if not row.chat_enabled or row.chat_webhook_ciphertext is None:
                raise DeliveryFailed("chat notifications are off or have no webhook URL")
            await self._chat(claimed, self._open(row.chat_webhook_ciphertext))
            return
        if "@" not in claimed.recipient:
            raise DeliveryFailed(f"no email address for {claimed.recipient}")
        if not row.email_enabled or not row.smtp_host or not row.smtp_from:
            raise DeliveryFailed("email notifications are off or have no SMTP host and from address")
        username = password = None
        if row.smtp_credential:
            try:
                secret = await self._tenants.credential(claimed.tenant_id, row.smtp_credential, "basic")
            except NodeRefused as refused:
                raise DeliveryFailed(f"the SMTP login: {refused.outcome.error.message}") from refused
            assert isinstance(secret, BasicSecret)
            username, password = secret.username, secret.password
        smtp = Smtp(row.smtp_host, row.smtp_port or 25, row.smtp_tls, row.smtp_from, username, password)
        await self._email(claimed, smtp)

    async def _chat(self, claimed: Claimed, url: str) -> None:
        request = OutgoingRequest(
            method="POST",
            url=url,
            headers={"content-type": "application/json"},
            content=chat_payload(claimed.body),
            response_cap_bytes=64 * 1024,
            timeout_seconds=CHAT_TIMEOUT_SECONDS,
            # The URL is the secret: its path is never shown, and a redirect is not followed.
            follow_redirects=False,
        )
        outcome = await self._http.send(claimed.tenant_id, request)
        if isinstance(outcome, Failed):
            raise DeliveryFailed(f"chat webhook: {outcome.error.message}")

    async def _email(self, claimed: Claimed, smtp: Smtp) -> None:
        policy = await self._tenants.network_policy(claimed.tenant_id)
        refusal = refuse_name(smtp.host)
        if refusal is None:
            try:
                found = await self._resolver.resolve(smtp.host, smtp.port)
            except Exception as error:  # the resolver's own error types differ by implementation
                raise DeliveryFailed(f"SMTP host {smtp.host} cannot be resolved") from error
            refusal = refuse_addresses(smtp.host, found, policy)
        if refusal is not None:
            raise DeliveryFailed(f"SMTP host not allowed: {refusal.reason}")
        message = EmailMessage()
        message["From"] = smtp.sender
        message["To"] = claimed.recipient
        message["Subject"] = claimed.subject
        message.set_content(claimed.body)
        try:
            await aiosmtplib.send(
                message,
                hostname=smtp.host,
                port=smtp.port,
                username=smtp.username,
                password=smtp.password,
                use_tls=smtp.tls == "tls",
                start_tls=smtp.tls == "starttls",
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPConnectTimeoutError) as error:
            raise DeliveryFailed(f"SMTP {smtp.host}:{smtp.port} could not be reached: {error}") from error
        except aiosmtplib.SMTPException as error:
            raise DeliveryFailed(f"SMTP {smtp.host}:{smtp.port}: {type(error).__name__}: {error}") from error
        except (TimeoutError, OSError) as error:
            raise DeliveryFailed(
                f"SMTP {smtp.host}:{smtp.port} could not be reached ({type(error).__name__})"
            ) from error

    def _open(self, ciphertext: bytes) -> str:
        if self._box is None:
            raise DeliveryFailed("the runner has no MILLRACE_ENCRYPTION_KEY to read the webhook URL with")
        try:
            return self._box.open(ciphertext)
        except SecretsUnavailable as error:
            raise DeliveryFailed(str(error)) from error
