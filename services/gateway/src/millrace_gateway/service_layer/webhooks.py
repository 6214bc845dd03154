"""Webhook use cases: where a call goes, whether its signature holds, and accepting it. An accepted call
is stored with its delivery claim in the outbox, in one transaction, and the relay publishes it to
``webhooks.inbound``: no request waits for Kafka holding a database connection, and calls are accepted
while Kafka is away (they run once it is back)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

from millrace_common.contracts.limits import MIN_MESSAGE_BYTES
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.webhooks import (
    WebhookReceived,
    run_id_for_key,
    verify_signature,
    webhook_idempotency_key,
)
from millrace_common.contracts.outgoing import Outgoing
from millrace_common.contracts.topics import WEBHOOKS_INBOUND
from millrace_common.language.workflow import TriggerConfig
from millrace_common.platform.secrets import SecretBox, SecretsUnavailable
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import credentials, webhook_deliveries, workflows
from millrace_gateway.adapters.outbox import Outbox
from millrace_gateway.domain.refusals import NoWebhook, WebhookMisconfigured, WrongState
from millrace_gateway.domain.webhooks import WebhookCall, WebhookTarget, takes_calls, verifying_secret


class CallTooLarge(Exception):
    """The call, as the message it travels in, is larger than a message may be."""


@dataclass(frozen=True)
class AcceptedCall:
    run_id: UUID
    delivery_id: str
    duplicate: bool
    """The delivery id was accepted before: the run it started is the one named."""


class WebhookReceiver:
    def __init__(self, engine: AsyncEngine, box: SecretBox, outbox: Outbox) -> None:
        self._engine = engine
        self._box = box
        self._outbox = outbox

    async def target(self, token: str) -> WebhookTarget:
        """The workflow behind a webhook address; it must be active with a webhook trigger."""
        async with self._engine.connect() as connection:
            row = await workflows.by_webhook_token(connection, token)
        if row is None:
            raise NoWebhook("no webhook at this address")
        if not takes_calls(row.status, row.trigger_kind):
            raise WrongState("the workflow is not active with a webhook trigger")
        return WebhookTarget(
            row.id, row.tenant_id, row.workflow_version, TriggerConfig.model_validate(row.config)
        )

    async def verified(
        self, target: WebhookTarget, *, timestamp: str | None, signature: str | None, body: bytes
    ) -> bool:
        """Whether the call was verified (False: it did not need to be). Raises ``SignatureRejected``
        when it needed to be and its signature or timestamp is missing, wrong or stale."""
        name = verifying_secret(target.config, signed=signature is not None or timestamp is not None)
        if name is None:
            return False
        secret = await self._hmac_secret(target.tenant_id, name)
        verify_signature(
            secret, timestamp_header=timestamp, signature_header=signature, body=body, now=utc_now()
        )
        return True

    async def accept(self, target: WebhookTarget, call: WebhookCall) -> AcceptedCall:
        """Claim the call's delivery id and store its message; a delivery id seen before starts nothing
        new. Raises ``CallTooLarge`` before anything is stored."""
        key = webhook_idempotency_key(target.workflow_id, call.delivery_id)
        run_id = run_id_for_key(key)
        now = utc_now()
        message = WebhookReceived(
            tenant_id=target.tenant_id,
            correlation_id=run_id,
            workflow_id=target.workflow_id,
            workflow_version=target.workflow_version,
            delivery_id=call.delivery_id,
            run_id=run_id,
            idempotency_key=key,
            content_type=call.content_type,
            body=call.body,
            headers=call.headers,
            query=call.query,
            signature_verified=call.signature_verified,
            received_at=now,
        )
        encoded = message.to_bytes()
        # A body within the webhook limit can still grow past a message's (escaping turns control
        # characters into \uXXXX): the size contract's limit, checked before anything is stored.
        if len(encoded) > MIN_MESSAGE_BYTES:
            raise CallTooLarge
        async with self._engine.begin() as connection:
            if not await webhook_deliveries.claim(
                connection, target.workflow_id, call.delivery_id, run_id, now
            ):
                # Seen before: the first call was answered once its message was stored with the claim.
                return AcceptedCall(run_id, call.delivery_id, duplicate=True)
            message_out = Outgoing(WEBHOOKS_INBOUND, str(target.workflow_id), message, value=encoded)
            await self._outbox.add(connection, message_out)
        self._outbox.wake()
        return AcceptedCall(run_id, call.delivery_id, duplicate=False)

    async def _hmac_secret(self, tenant_id: str, name: str) -> bytes:
        async with self._engine.connect() as connection:
            row = await credentials.credential(connection, tenant_id, name)
        misconfigured = WebhookMisconfigured(
            f"the workflow's signing secret {name!r} is not an hmac credential of its tenant"
        )
        if row is None or row.kind != "hmac":
            raise misconfigured
        try:
            secret = json.loads(self._box.open(row.ciphertext)).get("secret")
        except (SecretsUnavailable, ValueError, AttributeError) as error:
            raise misconfigured from error
        if not isinstance(secret, str) or not secret:
            raise misconfigured
        return secret.encode()
