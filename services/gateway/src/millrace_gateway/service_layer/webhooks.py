"""Webhook use cases: where a call goes, whether its signature holds, and accepting it. An accepted call's
outcome is decided here (``domain.webhooks.decide_call``) and its run's ``StartRun`` is stored with its
delivery claim, in one statement shared with the calls accepted at the same moment
(``adapters.webhook_intake``); the live relay then publishes it to ``runs.commands``. No request waits
for Kafka, and calls are accepted while Kafka is away (they run once it is back)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

from millrace_common.contracts.limits import MIN_MESSAGE_BYTES
from millrace_common.contracts.messages.envelope import utc_now
from millrace_common.contracts.messages.webhooks import verify_signature
from millrace_common.platform.secrets import SecretBox, SecretsUnavailable
from sqlalchemy.ext.asyncio import AsyncEngine

from millrace_gateway.adapters import credentials
from millrace_gateway.adapters.webhook_intake import Intake, WebhookIntake
from millrace_gateway.adapters.webhook_targets import WebhookTargets
from millrace_gateway.domain.refusals import NoWebhook, WebhookMisconfigured, WrongState
from millrace_gateway.domain.webhooks import (
    WebhookCall,
    WebhookTarget,
    decide_call,
    takes_calls,
    verifying_secret,
)


class CallTooLarge(Exception):
    """The call, as the message it travels in, is larger than a message may be."""


@dataclass(frozen=True)
class AcceptedCall:
    run_id: UUID
    delivery_id: str
    duplicate: bool
    """The delivery id was accepted before: the run it started is the one named."""
    outcome: str | None
    """``started``, or why no run started (``filtered``, ``condition_error``); None for a duplicate."""
    reason: str | None


class WebhookReceiver:
    def __init__(
        self, engine: AsyncEngine, box: SecretBox, targets: WebhookTargets, intake: WebhookIntake
    ) -> None:
        self._engine = engine
        self._box = box
        self._targets = targets
        self._intake = intake

    async def target(self, token: str) -> WebhookTarget:
        """The workflow behind a webhook address; it must be active with a webhook trigger."""
        row = await self._targets.by_token(token)
        if row is None:
            raise NoWebhook("no webhook at this address")
        if (
            not takes_calls(row.status, row.trigger_kind)
            or row.config is None
            or row.workflow_version is None
        ):
            raise WrongState("the workflow is not active with a webhook trigger")
        wait = await self._targets.respond_wait(row.workflow_id, row.workflow_version)
        return WebhookTarget(row.workflow_id, row.tenant_id, row.workflow_version, row.config, wait)

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
        """Claim the call's delivery id and store the run's ``StartRun`` with the claim; a delivery id
        seen before starts nothing new. Raises ``CallTooLarge`` before anything is stored."""
        now = utc_now()
        decision = decide_call(target, call, now=now)
        encoded = decision.start.to_bytes() if decision.start is not None else None
        # A body within the webhook limit can still grow past a message's (escaping turns control
        # characters into \uXXXX): the size contract's limit, checked before anything is stored.
        if encoded is not None and len(encoded) > MIN_MESSAGE_BYTES:
            raise CallTooLarge
        claimed = await self._intake.claim(
            Intake(
                workflow_id=target.workflow_id,
                delivery_id=call.delivery_id,
                run_id=decision.run_id,
                received_at=now,
                outcome=decision.outcome.value,
                reason=decision.reason,
                start_run=encoded,
            )
        )
        if not claimed:
            # Seen before: the first call was answered once its claim (and its StartRun) was stored.
            return AcceptedCall(decision.run_id, call.delivery_id, duplicate=True, outcome=None, reason=None)
        return AcceptedCall(
            decision.run_id,
            call.delivery_id,
            duplicate=False,
            outcome=decision.outcome.value,
            reason=decision.reason,
        )

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
